#!/usr/bin/env bash
# Load and comparison harness: our mail-server against Dovecot (+ Postfix delivering to
# Dovecot over LMTP), both from this machine, in the same run, on 127.0.0.1 only.
#
#   sudo benches/load/run.sh            # from the workspace root, as root (Dovecot needs it)
#
# What it does:
#   1. builds mail-server and the load generators (release);
#   2. starts private Dovecot, Postfix and our mail-server on free 127.0.0.1 ports, with
#      configs and data in one temp dir (nothing under /etc is changed);
#   3. runs every load against ours, then against the peer, each with a time cap:
#        IMAP IDLE   N connections (default 1000) over IMAPS, server memory per connection
#        IMAP APPEND 10 KiB messages on one IMAPS connection
#        POP3 RETR   2,000 x 10 KiB (best of 5 sessions); again with the client's older
#                    line-by-line reader (RETR_PER_LINE=0 skips that)
#        SMTP e2e    smtp-source 2,000 x 10 KiB over 10 sessions until all readable over IMAP
#        SMTP 10k    ours only: 10,000 messages from smtp-source, all delivered
#   4. prints a table (ours, theirs, ratio) and stops everything it started (trap EXIT).
#
# Knobs (environment): IDLE_CONNS (1000), APPEND_MSGS (1000), APPEND_SECS (30),
# RETR_MSGS (2000), SMTP_MSGS (2000), SMTP_10K (10000; 0 skips), DOVECOT_PLAIN_IDLE (1: also
# measure Dovecot's IDLE over plaintext IMAP, 0 skips), RETR_PER_LINE (1: also run the
# POP3 load with the line-by-line body reader, 0 skips), KEEP=1 keeps the temp dir,
# SKIP_BUILD=1 uses the binaries already built, SERVER_BIN=PATH runs that mail-server binary
# instead of building this workspace's, RESULTS=FILE appends the RESULT lines there,
# OURS_ENV="NAME=VALUE ..." sets environment variables for our server only (e.g.
# OURS_ENV=GLIBC_TUNABLES=glibc.malloc.mmap_threshold=131072, see docs/bench-notes/load.md).
set -euo pipefail

IDLE_CONNS=${IDLE_CONNS:-1000}
APPEND_MSGS=${APPEND_MSGS:-1000}
APPEND_SECS=${APPEND_SECS:-30}
RETR_MSGS=${RETR_MSGS:-2000}
SMTP_MSGS=${SMTP_MSGS:-2000}
SMTP_10K=${SMTP_10K:-10000}
DOVECOT_PLAIN_IDLE=${DOVECOT_PLAIN_IDLE:-1}
RETR_PER_LINE=${RETR_PER_LINE:-1}
MSG_SIZE=10240
PASS=secret

HERE=$(cd "$(dirname "$0")" && pwd)
WS=$(cd "$HERE/../.." && pwd)
if [ "$(id -u)" != 0 ]; then echo "run as root (Dovecot drops privileges to vmail)" >&2; exit 1; fi
for tool in dovecot postfix smtp-source python3 openssl; do
    command -v "$tool" >/dev/null || { echo "missing: $tool (apt-get install dovecot-imapd dovecot-pop3d dovecot-lmtpd postfix python3 openssl)" >&2; exit 1; }
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" -lt $((IDLE_CONNS * 3 + 100)) ]; then
    echo "fd limit $(ulimit -n) is too low for $IDLE_CONNS connections" >&2; exit 1
fi

# ---------------------------------------------------------------- build
T0=$(date +%s)
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    if [ -n "${SERVER_BIN:-}" ]; then
        echo "== building (release): load generators; server: $SERVER_BIN"
        (cd "$WS" && cargo build --release -q -p mail-benches --bins)
    else
        echo "== building (release): mail-server, load generators"
        (cd "$WS" && cargo build --release -q -p mail-server -p mail-benches --bins)
    fi
fi
TARGET=${CARGO_TARGET_DIR:-$WS/target}/release
SERVER=${SERVER_BIN:-$TARGET/mail-server}
for b in "$SERVER" "$TARGET"/{imap-idle-load,imap-append-load,pop3-retr-load,smtp-e2e-load}; do
    [ -x "$b" ] || { echo "missing binary $b" >&2; exit 1; }
done

# ---------------------------------------------------------------- temp dir, ports, cleanup
ROOT=$(mktemp -d /tmp/mail-load.XXXXXX)
chmod 755 "$ROOT"
OURS_PID=""
DOVECOT_PID=""
PF_STARTED=0
cleanup() {
    set +e
    if [ -n "$OURS_PID" ] && kill -0 "$OURS_PID" 2>/dev/null; then
        kill -TERM "$OURS_PID"; wait "$OURS_PID" 2>/dev/null
    fi
    if [ "$PF_STARTED" = 1 ]; then postfix -c "$ROOT/postfix/etc" stop >/dev/null 2>&1; fi
    if [ -n "$DOVECOT_PID" ] && kill -0 "$DOVECOT_PID" 2>/dev/null; then
        kill -TERM "$DOVECOT_PID"
        for _ in $(seq 1 100); do kill -0 "$DOVECOT_PID" 2>/dev/null || break; sleep 0.1; done
    fi
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $ROOT"; else rm -rf "$ROOT"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# N distinct free ports on 127.0.0.1 (bound then released; all asked for at once).
free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}
read -r D_IMAP D_IMAPS D_POP3 D_LMTP PF_SMTP O_POP3 O_IMAP O_IMAPS O_SMTP <<<"$(free_ports 9)"

# ---------------------------------------------------------------- seed maildir (2,000 x 10 KiB)
echo "== seeding $RETR_MSGS messages of $MSG_SIZE bytes"
SEED=$ROOT/seed/Maildir
python3 - "$SEED" "$RETR_MSGS" "$MSG_SIZE" <<'EOF'
import os, sys
root, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for d in ("cur", "new", "tmp"):
    os.makedirs(os.path.join(root, d), exist_ok=True)
line = "The quick brown fox jumps over the lazy dog, again and again, 0123456789.\n"
for i in range(n):
    head = (f"From: Seeder <seed@example.test>\nTo: pop@example.test\n"
            f"Subject: seed message {i}\nDate: Wed, 25 Nov 2026 00:00:00 +0000\n"
            f"Message-ID: <seed-{i}@example.test>\n\n")
    body = line * ((size - len(head)) // len(line))
    pad = size - len(head) - len(body) - 1
    text = head + body + "x" * max(pad, 0) + "\n"
    with open(os.path.join(root, "cur", f"1764028800.M{i}P1.bench:2,S"), "w") as f:
        f.write(text)
EOF

# ---------------------------------------------------------------- Dovecot
echo "== starting Dovecot ($(dovecot --version))"
DV=$ROOT/dovecot
getent group vmail >/dev/null || groupadd --system vmail
id vmail >/dev/null 2>&1 || useradd --system -g vmail -d /nonexistent -s /usr/sbin/nologin vmail
mkdir -p "$DV"/{run,state,mail}
for u in idle append pop smtp; do echo "$u:{PLAIN}$PASS::::::"; done > "$DV/passwd"
chmod 640 "$DV/passwd"; chgrp dovecot "$DV/passwd"
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$DV/key.pem" -out "$DV/cert.pem" >/dev/null 2>&1
chmod 600 "$DV/key.pem"
mkdir -p "$DV/mail/pop"
cp -r "$SEED" "$DV/mail/pop/Maildir"
chown -R vmail:vmail "$DV/mail"
sed -e "s|@DV@|$DV|g" -e "s|@IMAP@|$D_IMAP|" -e "s|@IMAPS@|$D_IMAPS|" \
    -e "s|@POP3@|$D_POP3|" -e "s|@LMTP@|$D_LMTP|" "$HERE/dovecot.conf.in" > "$DV/dovecot.conf"
dovecot -c "$DV/dovecot.conf"
for _ in $(seq 1 100); do [ -s "$DV/run/master.pid" ] && break; sleep 0.1; done
if [ ! -s "$DV/run/master.pid" ]; then cat "$DV/dovecot.log" 2>/dev/null; echo "Dovecot did not start" >&2; exit 1; fi
DOVECOT_PID=$(cat "$DV/run/master.pid")

# ---------------------------------------------------------------- Postfix -> Dovecot LMTP
echo "== starting Postfix $(postconf -d -h mail_version 2>/dev/null)"
PF=$ROOT/postfix
mkdir -p "$PF/etc" "$PF/spool" "$PF/data"
chown postfix "$PF/data"
sed -e "s|@PF@|$PF|g" -e "s|@LMTP@|$D_LMTP|" "$HERE/postfix-main.cf.in" > "$PF/etc/main.cf"
sed -e "s|@SMTP@|$PF_SMTP|" "$HERE/postfix-master.cf.in" > "$PF/etc/master.cf"
if ! postfix -c "$PF/etc" check || ! postfix -c "$PF/etc" start >/dev/null 2>&1; then
    script -qc "postfix -c $PF/etc start" /dev/null; exit 1
fi
PF_STARTED=1

# ---------------------------------------------------------------- ours
echo "== starting mail-server"
OURS=$ROOT/ours
mkdir -p "$OURS"
sed -e "s|@DATA@|$OURS/data|" -e "s|@POP3@|$O_POP3|" -e "s|@IMAP@|$O_IMAP|" \
    -e "s|@IMAPS@|$O_IMAPS|" -e "s|@SMTP@|$O_SMTP|" "$HERE/mail-server.toml.in" > "$OURS/server.toml"
# An older build without the IMAP/SMTP listeners refuses their keys: drop them and go on
# (those loads then print "ours: n/a").
if ! "$SERVER" -c "$OURS/server.toml" check-config >/dev/null 2>&1; then
    sed -i -e '/^imap/d' -e '/^smtp/d' "$OURS/server.toml"
    "$SERVER" -c "$OURS/server.toml" check-config >/dev/null
fi
for u in idle append pop smtp smtp10k; do
    printf '%s\n' "$PASS" | "$SERVER" -c "$OURS/server.toml" user add "$u@example.test" >/dev/null
done
"$SERVER" -c "$OURS/server.toml" import pop@example.test "$SEED" --format maildir >/dev/null
# 1,000 IMAP connections of one account: lift the organisation's per-account limit (ACC-9)
"$SERVER" -c "$OURS/server.toml" policy set --org example.test limits.max_imap_connections 5000 >/dev/null
# shellcheck disable=SC2086 # OURS_ENV is a list of NAME=VALUE words
env ${OURS_ENV:-} "$SERVER" -c "$OURS/server.toml" serve >"$OURS/server.log" 2>&1 &
OURS_PID=$!
for _ in $(seq 1 300); do
    grep -q '^ready' "$OURS/server.log" && break
    kill -0 "$OURS_PID" 2>/dev/null || { cat "$OURS/server.log"; echo "mail-server exited" >&2; exit 1; }
    sleep 0.1
done
grep -q '^ready' "$OURS/server.log" || { cat "$OURS/server.log"; echo "mail-server not ready" >&2; exit 1; }
# Which listeners does this build have? ("listening imaps 127.0.0.1:PORT ...")
has_listener() { grep -q "^listening $1 " "$OURS/server.log"; }

# ---------------------------------------------------------------- loads
declare -A R   # R[load,who] = value
RESULTS=${RESULTS:-$ROOT/results.txt}
# run LABEL WHO KEY CMD...: runs a load generator, keeps its RESULT line, extracts KEY.
run() {
    local label=$1 who=$2 key=$3; shift 3
    local out
    echo "-- $label: $who"
    if out=$("$@" 2>&1); then :; else echo "$out" | sed 's/^/   /'; echo "   (failed)"; R[$label,$who]="failed"; return 0; fi
    echo "$out" | grep -v '^RESULT' | sed 's/^/   /'
    local line; line=$(echo "$out" | grep '^RESULT' | tail -1)
    echo "$label $who $line" >>"$RESULTS"
    R[$label,$who]=$(echo "$line" | tr ' ' '\n' | sed -n "s/^$key=//p")
}
na() { echo "-- $1: ours: n/a ($2)"; R[$1,ours]="n/a"; }

echo "== IMAP IDLE: $IDLE_CONNS connections (IMAPS), memory per idle connection"
if has_listener imaps; then
    run idle ours rss_per_conn timeout 300 "$TARGET/imap-idle-load" --addr "127.0.0.1:$O_IMAPS" --tls \
        --user idle@example.test --pass "$PASS" --connections "$IDLE_CONNS" --pid "$OURS_PID" --cap-secs 240
    R[idle_pss,ours]=$(grep '^idle ours' "$RESULTS" | tail -1 | tr ' ' '\n' | sed -n 's/^pss_per_conn=//p')
else na idle "no imaps listener"; fi
run idle dovecot rss_per_conn timeout 300 "$TARGET/imap-idle-load" --addr "127.0.0.1:$D_IMAPS" --tls \
    --user idle --pass "$PASS" --connections "$IDLE_CONNS" --pid "$DOVECOT_PID" --cap-secs 240
R[idle_pss,dovecot]=$(grep '^idle dovecot' "$RESULTS" | tail -1 | tr ' ' '\n' | sed -n 's/^pss_per_conn=//p')
# Let the previous load's imap/imap-login processes exit before the next "before" reading.
drain_dovecot() {
    for _ in $(seq 1 300); do
        [ "$(pgrep -P "$DOVECOT_PID" -c -x 'imap|imap-login' || true)" -le 0 ] && return 0; sleep 0.1
    done
    echo "   (Dovecot still has $(pgrep -P "$DOVECOT_PID" -c -x 'imap|imap-login') imap processes)"
}
drain_dovecot
if [ "$DOVECOT_PLAIN_IDLE" = 1 ]; then
    run idle_plain dovecot rss_per_conn timeout 300 "$TARGET/imap-idle-load" --addr "127.0.0.1:$D_IMAP" \
        --user idle --pass "$PASS" --connections "$IDLE_CONNS" --pid "$DOVECOT_PID" --cap-secs 240
    R[idle_plain_pss,dovecot]=$(grep '^idle_plain dovecot' "$RESULTS" | tail -1 | tr ' ' '\n' | sed -n 's/^pss_per_conn=//p')
    # Otherwise 1,000 exiting imap processes share the CPU with the next load (ours).
    drain_dovecot
fi

echo "== IMAP APPEND: $MSG_SIZE-byte messages on one IMAPS connection"
if has_listener imaps; then
    run append ours msgs_per_sec timeout 120 "$TARGET/imap-append-load" --addr "127.0.0.1:$O_IMAPS" --tls \
        --user append@example.test --pass "$PASS" --messages "$APPEND_MSGS" --secs "$APPEND_SECS" --size "$MSG_SIZE"
else na append "no imaps listener"; fi
run append dovecot msgs_per_sec timeout 120 "$TARGET/imap-append-load" --addr "127.0.0.1:$D_IMAPS" --tls \
    --user append --pass "$PASS" --messages "$APPEND_MSGS" --secs "$APPEND_SECS" --size "$MSG_SIZE"

echo "== POP3 RETR: $RETR_MSGS x $MSG_SIZE bytes (plaintext POP3, best of 5 sessions)"
if has_listener pop3; then
    run retr ours msgs_per_sec timeout 300 "$TARGET/pop3-retr-load" --addr "127.0.0.1:$O_POP3" \
        --user pop@example.test --pass "$PASS" --messages "$RETR_MSGS" --rounds 5 --secs 60
    R[retr_mb,ours]=$(grep '^retr ours' "$RESULTS" | tail -1 | tr ' ' '\n' | sed -n 's/^mb_per_sec=//p')
else na retr "no pop3 listener"; fi
run retr dovecot msgs_per_sec timeout 300 "$TARGET/pop3-retr-load" --addr "127.0.0.1:$D_POP3" \
    --user pop --pass "$PASS" --messages "$RETR_MSGS" --rounds 5 --secs 60
R[retr_mb,dovecot]=$(grep '^retr dovecot' "$RESULTS" | tail -1 | tr ' ' '\n' | sed -n 's/^mb_per_sec=//p')
if [ "$RETR_PER_LINE" = 1 ]; then
    # The same load with the client's previous line-by-line body reader, for comparison
    # with runs before 2026-11-25 (that reader costs the client more than a fast server).
    if has_listener pop3; then
        run retr_lines ours msgs_per_sec timeout 300 "$TARGET/pop3-retr-load" --addr "127.0.0.1:$O_POP3" \
            --user pop@example.test --pass "$PASS" --messages "$RETR_MSGS" --rounds 5 --secs 60 --per-line
    else na retr_lines "no pop3 listener"; fi
    run retr_lines dovecot msgs_per_sec timeout 300 "$TARGET/pop3-retr-load" --addr "127.0.0.1:$D_POP3" \
        --user pop --pass "$PASS" --messages "$RETR_MSGS" --rounds 5 --secs 60 --per-line
fi

echo "== SMTP end to end: smtp-source -s 10 -m $SMTP_MSGS -l $MSG_SIZE, until all readable over IMAP"
if has_listener smtp && has_listener imaps; then
    run smtp ours msgs_per_sec timeout 330 "$TARGET/smtp-e2e-load" --imap-addr "127.0.0.1:$O_IMAPS" --tls \
        --user smtp@example.test --pass "$PASS" --expect "$SMTP_MSGS" --cap-secs 300 -- \
        smtp-source -s 10 -m "$SMTP_MSGS" -l "$MSG_SIZE" -f load@example.test -t smtp@example.test "127.0.0.1:$O_SMTP"
else na smtp "no smtp or imaps listener"; fi
run smtp postfix msgs_per_sec timeout 330 "$TARGET/smtp-e2e-load" --imap-addr "127.0.0.1:$D_IMAPS" --tls \
    --user smtp --pass "$PASS" --expect "$SMTP_MSGS" --cap-secs 300 -- \
    smtp-source -s 10 -m "$SMTP_MSGS" -l "$MSG_SIZE" -f load@localhost -t smtp@localhost "127.0.0.1:$PF_SMTP"

if [ "$SMTP_10K" -gt 0 ]; then
    echo "== SMTP volume (ours only): smtp-source -s 10 -m $SMTP_10K -l $MSG_SIZE, all delivered"
    if has_listener smtp && has_listener imaps; then
        run smtp10k ours delivered timeout 330 "$TARGET/smtp-e2e-load" --imap-addr "127.0.0.1:$O_IMAPS" --tls \
            --user smtp10k@example.test --pass "$PASS" --expect "$SMTP_10K" --cap-secs 300 -- \
            smtp-source -s 10 -m "$SMTP_10K" -l "$MSG_SIZE" -f load@example.test -t smtp10k@example.test "127.0.0.1:$O_SMTP"
        R[smtp10k_rate,ours]=$(grep '^smtp10k ours' "$RESULTS" | tail -1 | tr ' ' '\n' | sed -n 's/^msgs_per_sec=//p')
    else na smtp10k "no smtp or imaps listener"; fi
fi

# ---------------------------------------------------------------- table
num() { [[ "${1:-}" =~ ^[0-9]+([.][0-9]+)?$ ]]; }
ratio() { # ratio A B: A/B, or n/a
    if num "${1:-}" && num "${2:-}"; then awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }'; else echo n/a; fi
}
kib() { if num "${1:-}"; then awk -v a="$1" 'BEGIN { printf "%.1f KiB", a / 1024 }'; else echo "${1:-n/a}"; fi; }
rate() { if num "${1:-}"; then printf '%s/s' "$1"; else echo "${1:-n/a}"; fi; }
g() { echo "${R[$1]:-n/a}"; }

echo
echo "== results${OURS_ENV:+ (ours with $OURS_ENV)} ($(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); $(date -u +%FT%TZ))"
printf '%-46s %-16s %-16s %s\n' "load" "ours" "theirs" "ratio (>1 = ours better)"
printf '%-46s %-16s %-16s %s\n' "SMTP e2e ${SMTP_MSGS}x10KiB, 10 sessions (msgs)" \
    "$(rate "$(g smtp,ours)")" "$(rate "$(g smtp,postfix)")" "$(ratio "$(g smtp,ours)" "$(g smtp,postfix)")"
printf '%-46s %-16s %-16s %s\n' "IMAP APPEND 10 KiB, one connection (msgs)" \
    "$(rate "$(g append,ours)")" "$(rate "$(g append,dovecot)")" "$(ratio "$(g append,ours)" "$(g append,dovecot)")"
printf '%-46s %-16s %-16s %s\n' "POP3 RETR ${RETR_MSGS}x10KiB (msgs)" \
    "$(rate "$(g retr,ours)")" "$(rate "$(g retr,dovecot)")" "$(ratio "$(g retr,ours)" "$(g retr,dovecot)")"
printf '%-46s %-16s %-16s %s\n' "POP3 RETR ${RETR_MSGS}x10KiB (MB)" \
    "$(rate "$(g retr_mb,ours)")" "$(rate "$(g retr_mb,dovecot)")" "$(ratio "$(g retr_mb,ours)" "$(g retr_mb,dovecot)")"
if [ "$RETR_PER_LINE" = 1 ]; then
    printf '%-46s %-16s %-16s %s\n' "POP3 RETR, line-by-line client (msgs)" \
        "$(rate "$(g retr_lines,ours)")" "$(rate "$(g retr_lines,dovecot)")" "$(ratio "$(g retr_lines,ours)" "$(g retr_lines,dovecot)")"
fi
printf '%-46s %-16s %-16s %s\n' "IMAPS IDLE x$IDLE_CONNS: VmRSS per connection" \
    "$(kib "$(g idle,ours)")" "$(kib "$(g idle,dovecot)")" "$(ratio "$(g idle,dovecot)" "$(g idle,ours)")"
printf '%-46s %-16s %-16s %s\n' "IMAPS IDLE x$IDLE_CONNS: Pss per connection" \
    "$(kib "$(g idle_pss,ours)")" "$(kib "$(g idle_pss,dovecot)")" "$(ratio "$(g idle_pss,dovecot)" "$(g idle_pss,ours)")"
if [ "$DOVECOT_PLAIN_IDLE" = 1 ]; then
    printf '%-46s %-16s %-16s %s\n' "IMAP IDLE x$IDLE_CONNS, Dovecot plaintext: VmRSS" \
        "(TLS only)" "$(kib "$(g idle_plain,dovecot)")" "$(ratio "$(g idle_plain,dovecot)" "$(g idle,ours)")"
    printf '%-46s %-16s %-16s %s\n' "IMAP IDLE x$IDLE_CONNS, Dovecot plaintext: Pss" \
        "(TLS only)" "$(kib "$(g idle_plain_pss,dovecot)")" "$(ratio "$(g idle_plain_pss,dovecot)" "$(g idle_pss,ours)")"
fi
if [ "$SMTP_10K" -gt 0 ]; then
    printf '%-46s %-16s %-16s %s\n' "SMTP ${SMTP_10K}x10KiB delivered (ours only)" \
        "$(g smtp10k,ours)/$SMTP_10K" "-" "$(rate "$(g smtp10k_rate,ours)")"
fi
echo "targets: rates >= 2x; idle memory ratio >= 10x (Dovecot per connection / ours)"
echo "raw RESULT lines:"
sed 's/^/  /' "$RESULTS"
echo "total $(( $(date +%s) - T0 ))s (build included)"
