#!/bin/sh
# Exec tool that always fails with a message on stderr.
cat > /dev/null
echo "fail.sh: the service is down" >&2
exit 3
