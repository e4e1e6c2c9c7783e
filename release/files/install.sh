#!/bin/sh
# Install this unpacked Stagedoor release on a systemd host (docs/operations.md, "Install from the release").
#
#   sudo ./install.sh [--role broker|gateway|agent]... [--prefix /opt/stagedoor] [--start]
#
# Copies the release to <prefix>/<version>, points <prefix>/current at it (an upgrade is the same
# command with the next release; the previous version stays for a rollback), creates the system user
# `stagedoor`, installs the units of the chosen roles, writes /etc/stagedoor/<role>.env from the
# examples when absent (never over an existing one), and enables the units. --start also (re)starts them.
# --root DIR installs under DIR instead of / and skips useradd/systemctl (for packaging and tests).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
version=$(cat "$here/VERSION")
prefix=/opt/stagedoor
root=
roles=
start=no

while [ $# -gt 0 ]; do
  case "$1" in
    --role) roles="$roles $2"; shift 2 ;;
    --prefix) prefix=$2; shift 2 ;;
    --root) root=$2; shift 2 ;;
    --start) start=yes; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

# The gateway-only artifact carries only the gateway's unit.
if [ -z "$roles" ]; then
  if [ -e "$here/systemd/stagedoor-broker.service" ]; then roles=broker; else roles=gateway; fi
fi
for role in $roles; do
  case "$role" in broker|gateway|agent) ;; *) echo "install.sh: unknown role $role (broker, gateway or agent)" >&2; exit 2 ;; esac
  [ -e "$here/systemd/stagedoor-$role.service" ] || { echo "install.sh: this artifact has no $role (the gateway-only artifact installs the gateway alone)" >&2; exit 2; }
done

# Node.js 20.19 or later must be on PATH (the release carries JavaScript, not a Node binary).
node_version=$(node -p 'process.versions.node' 2>/dev/null || true)
case "$node_version" in
  '') echo "install.sh: node not found; install Node.js 20.19 or later first" >&2; exit 1 ;;
esac
major=${node_version%%.*}
minor=${node_version#*.}; minor=${minor%%.*}
if [ "$major" -lt 20 ] || { [ "$major" -eq 20 ] && [ "$minor" -lt 19 ]; }; then
  echo "install.sh: Node.js $node_version is too old; 20.19 or later is needed" >&2; exit 1
fi
node_path=$(command -v node)
if [ -z "$root" ] && [ "$node_path" != /usr/bin/node ] && [ "$node_path" != /usr/local/bin/node ]; then
  echo "install.sh: note: node is $node_path; the units find node through /usr/bin/env, so make sure systemd's PATH has it" >&2
fi

if [ -z "$root" ] && [ "$(id -u)" -ne 0 ]; then echo "install.sh: run as root (sudo)" >&2; exit 1; fi

dest="$root$prefix/$version"
mkdir -p "$root$prefix"
if [ "$here" != "$dest" ]; then
  rm -rf "$dest.new"
  cp -a "$here" "$dest.new"
  rm -rf "$dest"
  mv "$dest.new" "$dest"
fi
# Switch atomically: a rename over the old link, never a moment without one.
ln -sfn "$version" "$root$prefix/current.new"
mv -T "$root$prefix/current.new" "$root$prefix/current"

if [ -z "$root" ] && ! id stagedoor >/dev/null 2>&1; then
  useradd --system --home-dir /var/lib/stagedoor --no-create-home --shell /usr/sbin/nologin stagedoor
fi

mkdir -p "$root/etc/stagedoor" "$root/etc/systemd/system"
chmod 0750 "$root/etc/stagedoor"
[ -z "$root" ] && chgrp stagedoor "$root/etc/stagedoor"
for role in $roles; do
  sed "s|/opt/stagedoor/current|$prefix/current|g" "$here/systemd/stagedoor-$role.service" > "$root/etc/systemd/system/stagedoor-$role.service"
  if [ ! -e "$root/etc/stagedoor/$role.env" ]; then
    cp "$here/env/$role.env" "$root/etc/stagedoor/$role.env"
    chmod 0640 "$root/etc/stagedoor/$role.env"
    [ -z "$root" ] && chgrp stagedoor "$root/etc/stagedoor/$role.env"
    echo "install.sh: wrote /etc/stagedoor/$role.env from the example: fill it in before starting"
  fi
done

if [ -z "$root" ]; then
  systemctl daemon-reload
  for role in $roles; do
    systemctl enable "stagedoor-$role.service"
    [ "$start" = yes ] && systemctl restart "stagedoor-$role.service"
  done
fi
echo "install.sh: Stagedoor $version installed in $prefix/current (roles:$roles)"
