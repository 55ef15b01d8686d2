[Unit]
Description={{serviceName}} service
After=syslog.target network.target remote-fs.target nss-lookup.target

[Service]
{{#if memoryLimit}}
MemoryLimit={{memoryLimit}}
{{/if}}
{{#if cpuQuota}}
CPUQuota={{cpuQuota}}
{{/if}}
{{#if ioReadBandwidthMax}}
IOReadBandwidthMax={{ioReadBandwidthMax}}
{{/if}}
{{#if ioWriteBandwidthMax}}
IOWriteBandwidthMax={{ioWriteBandwidthMax}}
{{/if}}
{{#if limitCore}}
LimitCORE={{limitCore}}
{{/if}}
LimitNOFILE=1000000
LimitSTACK=10485760
User={{user}}
ExecStart=/bin/bash -c '{{deployDir}}/scripts/run_{{serviceName}}.sh'
Restart=always

RestartSec=15s

[Install]
WantedBy=multi-user.target
