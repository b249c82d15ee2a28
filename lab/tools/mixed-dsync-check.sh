#!/bin/sh
# Does a Dovecot 2.3 (Debian 12) host sync with a 2.4 (Debian 13) one? A 2.3 doveadm client in a
# throw-away chroot (overlay on the cached bookworm base image, dovecot-core from the bookworm
# lab repository) runs a two-way `doveadm sync` with the lab's mx1 (Debian 13) over tcps.
# Needs a trixie lab (MXCTL_LAB_DIR below) whose users file lists mixed@example.test on both
# hosts. Paths are those of the lab this was run on (2026-11-30); adjust BASE/REPO/lab dir.
set -e
M=/tmp/mixed
mkdir -p $M/upper $M/work $M/merged
BASE=/var/cache/mxctl-lab/base-9e32dc059cc3/rootfs
REPO=/var/cache/mxctl-lab/repo-11a4571f360a/repo
CA=/var/lib/mxctl-lab-x/ca.pem
PW=$(cat /var/lib/mxctl-lab-x/secrets/mail-doveadm-password)
unshare --mount --pid --fork --propagation private sh -c "
set -e
mount -t overlay overlay -o lowerdir=$BASE,upperdir=$M/upper,workdir=$M/work $M/merged
mount -t proc proc $M/merged/proc
mount --rbind /dev $M/merged/dev
mkdir -p $M/merged/srv/lab-repo && mount --bind $REPO $M/merged/srv/lab-repo
cp $CA $M/merged/etc/lab-ca.pem
echo '10.254.85.21 mx1.example.test' >> $M/merged/etc/hosts
chroot $M/merged sh -c '
set -e
export DEBIAN_FRONTEND=noninteractive
dpkg -l dovecot-core >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq dovecot-core >/dev/null; }
groupadd -g 5000 vmail 2>/dev/null || true; useradd -u 5000 -g 5000 -d /var/vmail vmail 2>/dev/null || true
mkdir -p /var/vmail && chown vmail:vmail /var/vmail
cat > /etc/dovecot/dovecot.conf <<CONF
protocols = none
log_path = /var/log/dovecot.log
mail_location = sdbox:~/mail
mail_uid = 5000
mail_gid = 5000
passdb {
  driver = static
  args = nopassword=y
}
userdb {
  driver = static
  args = uid=5000 gid=5000 home=/var/vmail/%d/%n
}
doveadm_password = $PW
doveadm_port = 12345
ssl_client_ca_file = /etc/lab-ca.pem
CONF
dovecot --version
dovecot
sleep 1
U=mixed@example.test
printf \"Subject: from-2.3-1\n\nx\n\" | doveadm save -u \$U
printf \"Subject: from-2.3-2\n\nx\n\" | doveadm save -u \$U
echo \"--- 2.3 client: doveadm sync -u \$U tcps:mx1.example.test:12345\"
doveadm sync -u \$U tcps:mx1.example.test:12345; echo rc=\$?
doveadm -f tab mailbox status -u \$U \"messages guid\" INBOX
echo \"--- after a message saved on the 2.4 side, sync again\"
sleep 3
doveadm sync -u \$U tcps:mx1.example.test:12345; echo rc=\$?
doveadm -f tab fetch -u \$U hdr.subject mailbox INBOX all
dovecot stop
'
"
