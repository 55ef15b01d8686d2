#!/bin/bash
set -e

# WARNING: This file was auto-generated. Do not edit!
#          All your edit might be overwritten!
DEPLOY_DIR={{deployDir}}

cd "${DEPLOY_DIR}" || exit 1
{{#if numaNode}}
exec numactl --cpunodebind={{numaNode}} --membind={{numaNode}} bin/drainer \
{{else}}
exec bin/drainer \
{{/if}}
{{#if nodeId}}
    --node-id="{{nodeId}}" \
{{/if}}
    --addr="{{addr}}" \
    --pd-urls="{{pd}}" \
    --data-dir="{{dataDir}}" \
    --log-file="{{logDir}}/drainer.log" \
    --config=conf/drainer.toml 2>> "{{logDir}}/drainer_stderr.log"
