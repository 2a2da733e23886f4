"""A raw SMTP/LMTP client for the end-to-end tests: exact bytes out,
replies parsed as (code, [lines]) without any client-side smarts."""

import base64
import socket
import ssl


class RawSMTP:
    def __init__(self, host, port, tls_context=None, timeout=10,
                 server_hostname=None, source=None):
        self.host = host
        self.sock = socket.create_connection(
            (host, port), timeout=timeout,
            source_address=(source, 0) if source else None)
        if tls_context is not None:
            self.sock = tls_context.wrap_socket(
                self.sock, server_hostname=server_hostname or host)
        self.f = self.sock.makefile("rb")

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def reply(self):
        """One reply: (code, [text of each line]); (None, []) at EOF."""
        lines = []
        while True:
            line = self.f.readline()
            if not line:
                return None, lines
            assert line.endswith(b"\r\n"), line
            code = int(line[:3])
            lines.append(line[4:-2].decode("utf-8", "replace"))
            if line[3:4] == b" ":
                return code, lines
            assert line[3:4] == b"-", line

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def expect(self, line, code, status=None):
        """Send LINE; assert the reply code (and enhanced status code);
        return the reply's text lines."""
        got, text = self.cmd(line)
        assert got == code, (line, got, text)
        if status is not None:
            assert text[-1].startswith(status + " "), (line, text)
        return text

    def ehlo(self, name="client.example"):
        code, lines = self.cmd("EHLO " + name)
        assert code == 250, lines
        return lines[1:]

    def starttls(self, context):
        self.expect("STARTTLS", 220, "2.0.0")
        self.sock = context.wrap_socket(self.sock,
                                        server_hostname=self.host)
        self.f = self.sock.makefile("rb")

    def auth_plain(self, user, password, authz=""):
        ir = base64.b64encode(("%s\0%s\0%s" % (authz, user, password))
                              .encode()).decode()
        return self.cmd("AUTH PLAIN " + ir)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def b64(s):
    return base64.b64encode(s.encode()).decode()


def inbox(st, user, password):
    """Bodies of USER's INBOX, in UID order."""
    c = st.imap(user, password)
    try:
        typ, exists = c.select("INBOX", readonly=True)
        assert typ == "OK"
        if int(exists[0]) == 0:
            return []
        typ, data = c.uid("FETCH", "1:*", "(BODY.PEEK[])")
        assert typ == "OK", data
        return [d[1] for d in data if isinstance(d, tuple)]
    finally:
        c.logout()
