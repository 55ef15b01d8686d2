#!/bin/bash
set -e

# WARNING: This file was auto-generated. Do not edit!
#          All your edit might be overwritten!
DEPLOY_DIR={{deployDir}}

cd "${DEPLOY_DIR}" || exit 1

exec \
{{#if numaNode}}
    numactl --cpunodebind={{numaNode}} --membind={{numaNode}} \
{{/if}}
    env GODEBUG=madvdontneed=1 \
{{#if msMode}}
    PD_SERVICE_MODE=api \
{{/if}}
    bin/pd-server \
    --name="{{name}}" \
    --client-urls="{{clientUrl}}" \
    --advertise-client-urls="{{advertiseClientUrl}}" \
    --peer-urls="{{peerUrl}}" \
    --advertise-peer-urls="{{advertisePeerUrl}}" \
    --data-dir="{{dataDir}}" \
{{#if join}}
    --join="{{join}}" \
{{else}}
    --initial-cluster="{{initialCluster}}" \
{{/if}}
    --config=conf/pd.toml \
    --log-file="{{logDir}}/pd.log" 2>> "{{logDir}}/pd_stderr.log"
