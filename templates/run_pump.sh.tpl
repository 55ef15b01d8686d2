#!/bin/bash
set -e

# WARNING: This file was auto-generated. Do not edit!
#          All your edit might be overwritten!
DEPLOY_DIR={{deployDir}}

cd "${DEPLOY_DIR}" || exit 1
{{#if numaNode}}
exec numactl --cpunodebind={{numaNode}} --membind={{numaNode}} bin/pump \
{{else}}
exec bin/pump \
{{/if}}
{{#if nodeId}}
    --node-id="{{nodeId}}" \
{{/if}}
    --addr="{{addr}}" \
    --advertise-addr="{{advertiseAddr}}" \
    --pd-urls="{{pd}}" \
    --data-dir="{{dataDir}}" \
    --log-file="{{logDir}}/pump.log" \
    --config=conf/pump.toml 2>> "{{logDir}}/pump_stderr.log"
