#!/bin/bash
set -e

# WARNING: This file was auto-generated. Do not edit!
#          All your edit might be overwritten!
DEPLOY_DIR={{deployDir}}

cd "${DEPLOY_DIR}" || exit 1
{{#if numaCores}}
exec numactl --cpunodebind={{numaNode}} --membind={{numaNode}} -C {{numaCores}} env GODEBUG=madvdontneed=1 bin/tidb-server \
{{else}}
{{#if numaNode}}
exec numactl --cpunodebind={{numaNode}} --membind={{numaNode}} env GODEBUG=madvdontneed=1 bin/tidb-server \
{{else}}
exec env GODEBUG=madvdontneed=1 bin/tidb-server \
{{/if}}
{{/if}}
    -P {{port}} \
    --status="{{statusPort}}" \
    --host="{{listenHost}}" \
    --advertise-address="{{advertiseAddr}}" \
    --store="tikv" \
    --path="{{pd}}" \
    --log-slow-query="{{logDir}}/tidb_slow_query.log" \
    --config=conf/tidb.toml \
    --log-file="{{logDir}}/tidb.log" 2>> "{{logDir}}/tidb_stderr.log"
