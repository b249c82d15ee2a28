#!/bin/sh
# The other direction: a Dovecot 2.3 doveadm server (TLS, lab CA cert) on this machine's lab
# address, for a 2.4 lab host's `doveadm sync` client. Runs for $1 seconds.
set -e
M=/tmp/mixed
BASE=/var/cache/mxctl-lab/base-9e32dc059cc3/rootfs
REPO=/var/cache/mxctl-lab/repo-11a4571f360a/repo
LABDIR=/var/lib/mxctl-lab-x
PW=$(cat $LABDIR/secrets/mail-doveadm-password)
GW=$(python3 -c "import json;print(json.load(open('$LABDIR/lab.json'))['gateway'])")
[ -f $M/gw.key ] || {
  openssl req -new -newkey rsa:2048 -nodes -keyout $M/gw.key -subj /CN=gw.example.test -out $M/gw.csr 2>/dev/null
  printf 'subjectAltName=DNS:gw.example.test\n' > $M/ext
  openssl x509 -req -in $M/gw.csr -CA $LABDIR/ca.pem -CAkey $LABDIR/ca.key -CAcreateserial -days 2 -extfile $M/ext -out $M/gw.crt 2>/dev/null
}
unshare --mount --pid --fork --propagation private sh -c "
set -e
mount -t overlay overlay -o lowerdir=$BASE,upperdir=$M/upper,workdir=$M/work $M/merged
mount -t proc proc $M/merged/proc
mount --rbind /dev $M/merged/dev
cp $M/gw.crt $M/gw.key $M/merged/etc/
chroot $M/merged sh -c '
set -e
cat > /etc/dovecot/dovecot.conf <<CONF
protocols = none
listen = $GW
log_path = /var/log/dovecot.log
mail_location = sdbox:~/mail
mail_uid = 5000
mail_gid = 5000
ssl = yes
ssl_cert = </etc/gw.crt
ssl_key = </etc/gw.key
passdb {
  driver = static
  args = nopassword=y
}
userdb {
  driver = static
  args = uid=5000 gid=5000 home=/var/vmail/%d/%n
}
service doveadm {
  inet_listener {
    port = 12399
    ssl = yes
  }
}
doveadm_password = $PW
CONF
dovecot
echo 2.3 doveadm server up on $GW:12399
sleep $1
echo \"on the 2.3 side after the 2.4 client synced:\"
doveadm -f tab mailbox status -u mixed@example.test \"messages guid\" INBOX
doveadm -f tab fetch -u mixed@example.test hdr.subject mailbox INBOX all
grep -i error /var/log/dovecot.log | tail -3 || true
dovecot stop
'
"
