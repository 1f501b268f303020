#!/bin/sh
# Exec tool that answers and exits at once but leaves a background child holding its stdout.
# args are ignored; the child's pid goes to $STRAGGLER_PIDFILE.
cat > /dev/null
sleep 1000 &
echo $! > "$STRAGGLER_PIDFILE"
printf '{"done": true}\n'
