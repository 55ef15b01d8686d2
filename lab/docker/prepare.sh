#!/bin/bash
# Same preparation as the nspawn lab rootfs (lab/rootfs.ts PREPARE_SCRIPT; a unit test keeps them equal).
set -eu
export DEBIAN_FRONTEND=noninteractive LC_ALL=C
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod 755 /usr/sbin/policy-rc.d
apt-get update -q
apt-get install -y -q --no-install-recommends openssh-server dbus sudo etcd-server etcd-client prometheus prometheus-node-exporter prometheus-blackbox-exporter
rm -f /usr/sbin/policy-rc.d
# The packages enable their own units; the lab runs etcd only under PD and the monitoring stack
# only as TiUP's units (prometheus-9090, node_exporter-9100, blackbox_exporter-9115).
for u in etcd.service prometheus.service prometheus-node-exporter.service prometheus-blackbox-exporter.service; do
  systemctl disable "$u" >/dev/null 2>&1 || true
done
systemctl enable systemd-networkd.service ssh.service
# Every host must have its own host keys (tests verify them): generate at first boot.
rm -f /etc/ssh/ssh_host_*
cat > /etc/systemd/system/tiseal-ssh-hostkeys.service <<'EOF'
[Unit]
Description=Generate this host's own SSH host keys (tiseal lab)
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target ssh.service
EOF
systemctl enable tiseal-ssh-hostkeys.service
mkdir -p /etc/ssh/sshd_config.d
cat > /etc/ssh/sshd_config.d/tiseal-lab.conf <<'EOF'
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
MaxStartups 200
MaxSessions 100
EOF
id tidb >/dev/null 2>&1 || useradd -m -u 1000 -U -s /bin/bash tidb
# '*' = no password but not locked (a locked account may be refused even with a key).
usermod -p '*' tidb
echo 'tidb ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/tidb
chmod 0440 /etc/sudoers.d/tidb
install -d -m 700 -o tidb -g tidb /home/tidb/.ssh
# Empty machine-id: each overlay writes its own (otherwise every host shares one).
: > /etc/machine-id
mkdir -p /var/lib/dbus
ln -sf /etc/machine-id /var/lib/dbus/machine-id
# Mount targets for the read-only binds of node and the repo.
mkdir -p /opt/tiseal /usr/local/bin
: > /usr/local/bin/node
chmod 755 /usr/local/bin/node
mkdir -p /etc/systemd/journald.conf.d
printf '[Journal]\nStorage=volatile\nRuntimeMaxUse=32M\n' > /etc/systemd/journald.conf.d/tiseal-lab.conf
for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer systemd-timesyncd.service; do
  systemctl mask "$u" >/dev/null 2>&1 || true
done
apt-get clean
rm -rf /var/lib/apt/lists/*
