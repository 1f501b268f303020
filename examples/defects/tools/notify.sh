#!/bin/sh
# Defect alert: reads {"args": [label, worst], ...} as JSON on stdin and
# appends it to $PLANC_NOTIFY_LOG (default: notify.log in the working
# directory); prints the result as JSON on stdout.
log="${PLANC_NOTIFY_LOG:-notify.log}"
input=$(cat)
printf '%s\n' "$input" >> "$log"
printf '{"sent": true}\n'
