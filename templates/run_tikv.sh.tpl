#!/bin/bash
set -e

# WARNING: This file was auto-generated. Do not edit!
#          All your edit might be overwritten!
cd "{{deployDir}}" || exit 1

echo -n 'sync ... '
stat=$(time sync || sync)
echo ok
echo $stat
{{#if numaNode}}
exec numactl --cpunodebind={{numaNode}} --membind={{numaNode}} bin/tikv-server \
{{else}}
exec bin/tikv-server \
{{/if}}
    --addr "{{addr}}" \
    --advertise-addr "{{advertiseAddr}}" \
    --status-addr "{{statusAddr}}" \
    --advertise-status-addr "{{advertiseStatusAddr}}" \
    --pd "{{pd}}" \
    --data-dir "{{dataDir}}" \
    --config conf/tikv.toml \
    --log-file "{{logDir}}/tikv.log" 2>> "{{logDir}}/tikv_stderr.log"
