#!/bin/bash
set -e

# WARNING: This file was auto-generated. Do not edit!
#          All your edit might be overwritten!
DEPLOY_DIR={{deployDir}}
cd "${DEPLOY_DIR}" || exit 1
{{#if numaNode}}
exec numactl --cpunodebind={{numaNode}} --membind={{numaNode}} bin/cdc server \
{{else}}
exec bin/cdc server \
{{/if}}
    --addr "{{addr}}" \
    --advertise-addr "{{advertiseAddr}}" \
    --pd "{{pd}}" \
{{#if dataDir}}
    --data-dir="{{dataDir}}" \
{{/if}}
{{#if tls}}
    --ca tls/ca.crt \
    --cert tls/cdc.crt \
    --key tls/cdc.pem \
{{/if}}
{{#if gcTtl}}
    --gc-ttl {{gcTtl}} \
{{/if}}
{{#if tz}}
    --tz "{{tz}}" \
{{/if}}
{{#if clusterId}}
    --cluster-id {{clusterId}} \
{{/if}}
    --config conf/cdc.toml \
    --log-file "{{logDir}}/cdc.log" 2>> "{{logDir}}/cdc_stderr.log"
