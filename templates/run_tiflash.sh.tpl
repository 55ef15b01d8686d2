#!/bin/bash
set -e

# WARNING: This file was auto-generated. Do not edit!
#          All your edit might be overwritten!
cd "{{deployDir}}" || exit 1

export RUST_BACKTRACE=1

export TZ=${TZ:-/etc/localtime}
export LD_LIBRARY_PATH={{libraryDir}}:$LD_LIBRARY_PATH

echo -n 'sync ... '
stat=$(time sync)
echo ok
echo $stat
{{#if numaCores}}
exec numactl --cpunodebind={{numaNode}} --membind={{numaNode}} -C {{numaCores}} bin/tiflash/tiflash server \
{{else}}
{{#if numaNode}}
exec numactl --cpunodebind={{numaNode}} --membind={{numaNode}} bin/tiflash/tiflash server \
{{else}}
exec bin/tiflash/tiflash server \
{{/if}}
{{/if}}
    --config-file conf/tiflash.toml 2>> "{{logDir}}/tiflash_stderr.log"
