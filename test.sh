#!/usr/bin/env bash
# test.sh — the project's test command (README "Testing"; CI runs it via .ci/run).
#
#   ./test.sh                        vet, build and test everything with -race
#   ./test.sh ./imapcopy/            only these packages (vet, build, test)
#   ./test.sh -run TestCopy ./imapcopy/   extra go test flags pass through
#
# The real-server tests need dovecot, radicale, xandikos, postgresql and friends. When one
# is missing and we run as root on Debian/Ubuntu, they are installed with apt
# (service starts are blocked meanwhile: the tests start their own servers on
# free loopback ports and never use the system ones). With CI set, a missing
# server fails its tests instead of skipping them.
set -euo pipefail
cd "$(dirname "$0")"

have() {
	command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]
}

missing=()
for bin in dovecot doveadm radicale xandikos mbsync vdirsyncer sshd rsync /usr/bin/time curl sqlite3 chromium; do
	have "$bin" || missing+=("$bin")
done
# PostgreSQL's server programs live outside $PATH on Debian.
if ! have initdb && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
	missing+=(postgresql)
fi
if [ -x /usr/bin/python3 ] && ! /usr/bin/python3 -c 'import aiohttp' >/dev/null 2>&1; then
	missing+=(python3-aiohttp)
fi

if [ "${#missing[@]}" -gt 0 ]; then
	if [ "$(id -u)" = 0 ] && [ -f /etc/debian_version ] && have apt-get; then
		echo "test.sh: installing test servers (missing: ${missing[*]})" >&2
		# Keep the packages' system services from starting (no systemd here;
		# invoke-rc.d honours policy-rc.d). Only remove a file we created.
		made_policy=
		if [ ! -e /usr/sbin/policy-rc.d ]; then
			printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
			chmod 0755 /usr/sbin/policy-rc.d
			made_policy=1
		fi
		apt-get update
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
			dovecot-core dovecot-imapd radicale xandikos isync vdirsyncer \
			openssh-server openssh-client rsync time curl sqlite3 python3-aiohttp chromium postgresql
		if [ -n "$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
		# A system Dovecot or sshd may have started anyway on a host with a
		# real init; the tests do not use them, so they are left alone.
	else
		echo "test.sh: warning: missing ${missing[*]}; real-server tests will skip (or fail when CI is set)" >&2
	fi
fi

# Split arguments: package patterns vs. go test flags.
pkgs=()
flags=()
for arg in "$@"; do
	case "$arg" in
	./* | ../* | */... | github.com/*) pkgs+=("$arg") ;;
	*) flags+=("$arg") ;;
	esac
done
if [ "${#pkgs[@]}" -eq 0 ]; then
	pkgs=(./...)
fi

go mod download
go vet "${pkgs[@]}"
go build "${pkgs[@]}"
if [ "$#" -eq 0 ]; then
	# The whole run also gives every fuzz target a few seconds (crashers fail it).
	./fuzz.sh 3s
fi
go test -race -count=1 -timeout 25m ${flags[@]+"${flags[@]}"} "${pkgs[@]}"
