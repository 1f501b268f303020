#!/bin/sh
# Defect alert: reads {"args": [label, worst], "idempotency_key": ...} as JSON
# on stdin and appends it to $PLANC_NOTIFY_LOG (default: notify.log in the
# working directory), once per key: planrt redelivers a call cut short by a
# crash with the same key, so a key already logged is not logged again.
# Prints the result as JSON on stdout.
log="${PLANC_NOTIFY_LOG:-notify.log}"
input=$(cat)
key=$(printf '%s' "$input" | sed -n 's/.*"idempotency_key": *"\([^"]*\)".*/\1/p')
if [ -z "$key" ] || ! grep -qF "\"idempotency_key\": \"$key\"" "$log" 2>/dev/null; then
  printf '%s\n' "$input" >> "$log"
fi
printf '{"sent": true}\n'
