#!/bin/sh
# Exec tool whose stdout is not JSON.
cat > /dev/null
echo "this is not json"
