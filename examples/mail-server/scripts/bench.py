#!/usr/bin/env python3
# End-to-end figures for a running demo server (`mail-server serve` without a config):
#   python3 examples/mail-server/scripts/bench.py smtp=2525 pop3=2110 imaps=2993
# Sends 300 small messages and one 10 MiB message over SMTP to demo@example.test, then
# times a POP3 login, RETR and UIDL and IMAP SELECT, header FETCH, ENVELOPE/BODYSTRUCTURE
# FETCH and SEARCH. Loopback only; it stops by itself.
import smtplib, poplib, imaplib, ssl, time, sys
ports = dict(a.split('=') for a in sys.argv[1:])
ctx = ssl._create_unverified_context()
N = 300
msg = b'From: a@example.org\r\nTo: demo@example.test\r\nSubject: bench\r\n\r\n' + (b'x' * 76 + b'\r\n') * 50
t = time.time()
s = smtplib.SMTP('127.0.0.1', int(ports['smtp']))
for i in range(N):
    s.sendmail('a@example.org', ['demo@example.test'], msg)
s.quit()
dt = time.time() - t
print(f"smtp: {N} messages of {len(msg)} bytes on one connection: {dt:.2f}s = {N/dt:.0f} msg/s (each fsync'd before 250)")
big = b'Subject: big\r\n\r\n' + (b'y' * 998 + b'\r\n') * 10240
s = smtplib.SMTP('127.0.0.1', int(ports['smtp']))
t = time.time(); s.sendmail('a@example.org', ['demo@example.test'], big); dt = time.time() - t
s.quit()
print(f"smtp: one {len(big)/1048576:.1f} MiB message: {dt:.2f}s = {len(big)/1048576/dt:.0f} MiB/s")
t = time.time()
p = poplib.POP3('127.0.0.1', int(ports['pop3']))
p.user('demo@example.test'); p.pass_('demo-password')
dt_login = time.time() - t
n, _ = p.stat()
t = time.time(); resp, lines, octets = p.retr(n); dt = time.time() - t
print(f"pop3: USER/PASS login (argon2id, default cost) {dt_login*1000:.0f} ms; RETR {octets/1048576:.1f} MiB: {dt:.2f}s = {octets/1048576/dt:.0f} MiB/s (poplib, plaintext)")
t = time.time(); p.uidl(); dt = time.time() - t
print(f"pop3: UIDL of {n} messages: {dt*1000:.0f} ms")
p.quit()
m = imaplib.IMAP4_SSL('127.0.0.1', int(ports['imaps']), ssl_context=ctx)
m.login('demo@example.test', 'demo-password')
t = time.time(); m.select('INBOX'); dt = time.time() - t
print(f"imap: SELECT INBOX with {n} messages: {dt*1000:.0f} ms")
t = time.time(); typ, d = m.fetch('1:*', '(UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT FROM DATE)])'); dt = time.time() - t
print(f"imap: FETCH 1:* (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (...)]) of {n} messages: {dt*1000:.0f} ms")
t = time.time(); typ, d = m.fetch('1:*', '(ENVELOPE BODYSTRUCTURE)'); dt = time.time() - t
print(f"imap: FETCH 1:* (ENVELOPE BODYSTRUCTURE) of {n} messages: {dt*1000:.0f} ms")
t = time.time(); m.search(None, 'SUBJECT', 'bench'); dt = time.time() - t
print(f"imap: SEARCH SUBJECT over {n} messages: {dt*1000:.0f} ms")
m.logout()
