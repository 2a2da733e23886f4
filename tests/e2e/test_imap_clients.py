"""Real IMAP clients through the frontend over implicit TLS, verifying the
stack's CA (issue 3, point 12): mbsync (isync) and offlineimap3 syncing a
mailbox tree both ways with a local Maildir, and curl's IMAP support.  Every
result is checked on the server, message by message, over imaplib.

The clients connect to "localhost" where they verify the certificate's host
name themselves: mbsync 1.4 and offlineimap3's imaplib2 match only DNS
names, not IP addresses (the stack's certificate has both).  Each client
runs with HOME set to the test's tmp_path, so that it writes no state
elsewhere, and with a 60 s time-out."""

import calendar
import os
import re
import shutil
import socket
import subprocess
import textwrap
import time

import pytest

from conftest import DATA

pytestmark = pytest.mark.daemons

TIMEOUT = 60
TLS_HOST = "localhost"      # in the certificate as DNS:localhost

# Messages are put on the server with this INTERNALDATE.
SEED_DATE = "01-Feb-2024 10:00:00 +0000"
SEED_EPOCH = calendar.timegm((2024, 2, 1, 10, 0, 0))

MAILDIR_TO_IMAP = {"D": "\\Draft", "F": "\\Flagged", "P": "$Forwarded",
                   "R": "\\Answered", "S": "\\Seen", "T": "\\Deleted"}
PROVISIONED = {"INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"}
UTF7_NAME = "Entw&APw-rfe"          # "Entwürfe" in modified UTF-7


# ---- messages ---------------------------------------------------------------

def crlf(data):
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def lf(data):
    return data.replace(b"\r\n", b"\n")


def server_msg(tag, subject, body=b"", extra=b""):
    """A CRLF message with Message-ID <TAG@example.org>."""
    return (b"From: Sender <sender@example.org>\r\n"
            b"To: Someone <someone@example.test>\r\n"
            b"Subject: %s\r\n"
            b"Date: Thu, 01 Feb 2024 10:00:00 +0000\r\n"
            b"Message-ID: <%s@example.org>\r\n%s"
            b"\r\n"
            b"Body of %s.\r\n%s" % (subject, tag, extra, tag,
                                    body or b"Second line.\r\n"))


def local_msg(tag, subject):
    """A message as a local mail program writes it into a Maildir: LF."""
    return (b"From: Local User <local@example.test>\n"
            b"To: Someone <someone@example.org>\n"
            b"Subject: %s\n"
            b"Date: Fri, 02 Feb 2024 08:00:00 +0000\n"
            b"Message-ID: <%s@example.test>\n"
            b"\n"
            b"Written locally: %s.\n"
            b"-- \n"
            b"Local\n" % (subject, tag, tag))


UMLAUT_BODY = ("Grüße aus dem Entwurf – äöü ß\r\n").encode("utf-8")

# mailbox -> [(message, IMAP flags)]; the tree both sync tests start from.
SEED = {
    "INBOX": [
        (server_msg(b"in1", b"inbox one"), ("\\Seen",)),
        (server_msg(b"in2", b"inbox two"), ()),
        (server_msg(b"in3", b"inbox three"), ("\\Flagged",)),
        (crlf((DATA / "multipart.eml").read_bytes()),
         ("\\Answered", "\\Seen")),
    ],
    "Projects/2024": [
        (server_msg(b"p1", b"project report"), ()),
    ],
    UTF7_NAME: [
        (server_msg(b"draft-de", b"=?UTF-8?Q?Entwurf_f=C3=BCr_M=C3=BCller?=",
                    body=UMLAUT_BODY,
                    extra=b"MIME-Version: 1.0\r\nContent-Type: text/plain; "
                          b"charset=utf-8\r\nContent-Transfer-Encoding: "
                          b"8bit\r\n"), ("\\Draft",)),
    ],
    "Sent": [(server_msg(b"sent1", b"sent one"), ("\\Seen",))],
    "Drafts": [(server_msg(b"draft1", b"draft one"), ("\\Draft",))],
    "Archive": [(server_msg(b"arch1", b"archived one"), ("\\Seen",))],
}
SEED_FOLDERS = PROVISIONED | {"Projects", "Projects/2024", UTF7_NAME}


def message_key(data):
    m = re.search(rb"(?im)^Message-ID:[ \t]*(<[^>\r\n]+>)", data)
    assert m, "message without Message-ID: %r" % data[:200]
    return m.group(1).decode()


def seed_server(stack, user):
    c = stack.imap(*user)
    try:
        for name in ("Projects/2024", UTF7_NAME):
            typ, data = c.create(name)
            assert typ == "OK", (name, data)
        for box, items in SEED.items():
            for msg, flags in items:
                typ, data = c.append(box, "(%s)" % " ".join(flags),
                                     '"%s"' % SEED_DATE, msg)
                assert typ == "OK", (box, data)
    finally:
        c.logout()


def seed_expected():
    """SEED as {mailbox: {key: (flags, bytes)}}, every folder present."""
    exp = {name: {} for name in SEED_FOLDERS}
    for box, items in SEED.items():
        for msg, flags in items:
            exp[box][message_key(msg)] = (frozenset(flags), msg)
    return exp


# ---- the server's view (imaplib) --------------------------------------------

FETCH_RE = re.compile(
    rb'^\d+ \(UID (\d+) FLAGS \(([^)]*)\) INTERNALDATE "([^"]+)" '
    rb'BODY\[\] \{\d+\}$')


def list_names(c):
    typ, data = c.list('""', "*")
    assert typ == "OK", data
    names = set()
    for line in data:
        m = re.match(rb'\(([^)]*)\) "/" "?(.*?)"?$', line)
        assert m, line
        names.add(m.group(2).decode())
    return names


def mailbox_messages(c, name):
    """{key: (uid, flags, internaldate, bytes)} of mailbox NAME, read-only."""
    typ, data = c.select('"%s"' % name, readonly=True)
    assert typ == "OK", (name, data)
    typ, data = c.uid("SEARCH", "ALL")
    assert typ == "OK", data
    uids = data[0].split()
    out = {}
    if not uids:
        return out
    typ, data = c.uid("FETCH", b",".join(uids).decode(),
                      "(UID FLAGS INTERNALDATE BODY.PEEK[])")
    assert typ == "OK", data
    for item in data:
        if not isinstance(item, tuple):
            continue
        m = FETCH_RE.match(item[0])
        assert m, item[0]
        body = item[1]
        key = message_key(body)
        assert key not in out, "%s twice in %s" % (key, name)
        out[key] = (int(m.group(1)), frozenset(m.group(2).decode().split()),
                    m.group(3).decode(), body)
    assert len(out) == len(uids), (name, uids, sorted(out))
    return out


def server_state(stack, user):
    """{mailbox: {key: (uid, flags, internaldate, bytes)}} for every
    mailbox of USER, over a fresh connection (EXAMINE only)."""
    c = stack.imap(*user)
    try:
        return {name: mailbox_messages(c, name) for name in list_names(c)}
    finally:
        c.logout()


def flags_and_bytes(state):
    return {box: {k: (v[1], v[3]) for k, v in msgs.items()}
            for box, msgs in state.items()}


# ---- local Maildirs ---------------------------------------------------------

def maildir_flags(name):
    if ":2," not in name:
        return frozenset()
    return frozenset(MAILDIR_TO_IMAP[ch] for ch in name.split(":2,", 1)[1]
                     if ch in MAILDIR_TO_IMAP)


def maildir_folders(root):
    """{folder name: Path} of every Maildir folder under ROOT."""
    out = {}
    for cur in root.rglob("cur"):
        folder = cur.parent
        if (folder / "new").is_dir() and (folder / "tmp").is_dir():
            out[str(folder.relative_to(root))] = folder
    return out


def maildir_messages(folder):
    """{key: (flags, bytes, path)} of one Maildir folder."""
    out = {}
    for sub in ("new", "cur"):
        for p in sorted((folder / sub).iterdir()):
            data = p.read_bytes()
            key = message_key(data)
            assert key not in out, "%s twice in %s" % (key, folder)
            out[key] = (maildir_flags(p.name), data, p)
    assert not list((folder / "tmp").iterdir()), folder
    return out


def maildir_state(root, names=None):
    """{folder: {key: (flags, bytes)}}; NAMES maps local to IMAP names."""
    names = names or {}
    out = {}
    for local, path in maildir_folders(root).items():
        out[names.get(local, local)] = {
            k: (v[0], v[1]) for k, v in maildir_messages(path).items()}
    return out


def tree_snapshot(root):
    """Every file under ROOT (relative path -> bytes): the idempotence
    check compares two of these."""
    return {str(p.relative_to(root)): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def find_local(folder, key):
    msgs = maildir_messages(folder)
    assert key in msgs, (key, sorted(msgs))
    return msgs[key][2]


def set_local_flags(path, flags):
    """Rename a Maildir message into cur/ with the info ':2,FLAGS'."""
    base = path.name.split(":2,", 1)[0]
    new = path.parent.parent / "cur" / ("%s:2,%s" % (base, "".join(
        sorted(flags))))
    path.rename(new)
    return new


def deliver_local(folder, name, data, flags=None, mtime=None):
    """Put a new message into a local Maildir folder as a mail program
    would (new/ without info, or cur/ with flags)."""
    for sub in ("cur", "new", "tmp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    tmp = folder / "tmp" / name
    tmp.write_bytes(data)
    if mtime is not None:
        os.utime(tmp, (mtime, mtime))
    if flags is None:
        dest = folder / "new" / name
    else:
        dest = folder / "cur" / ("%s:2,%s" % (name, "".join(sorted(flags))))
    tmp.rename(dest)
    return dest


# The local changes both sync tests make, and what the server must hold
# afterwards: three new messages (INBOX, Projects/2024 and the new folder
# Projects/2025), flag changes (also in the UTF-7 folder) and a message
# whose file is deleted.
CHANGED_FLAGS = [("INBOX", "<in2@example.org>", "FS"),
                 ("INBOX", "<in3@example.org>", "RS"),
                 (UTF7_NAME, "<draft-de@example.org>", "DS")]
DELETED = ("INBOX", "<in1@example.org>")


def make_local_changes(maildir, prefix, utf7_local, mtime=None):
    """Apply the changes to a synced Maildir; returns the new messages as
    [(mailbox, bytes, maildir flags)]."""
    new = [("INBOX", local_msg(prefix + b"-inbox", b"written offline"), ""),
           ("Projects/2024", local_msg(prefix + b"-proj", b"project notes"),
            "FS"),
           ("Projects/2025", local_msg(prefix + b"-2025", b"plans for 2025"),
            "")]
    for i, (box, data, flags) in enumerate(new):
        deliver_local(maildir / box, "1700000000.%s%d.host" % (
            prefix.decode(), i), data, flags=flags or None, mtime=mtime)
    for box, key, flags in CHANGED_FLAGS:
        folder = maildir / (utf7_local if box == UTF7_NAME else box)
        set_local_flags(find_local(folder, key), flags)
    find_local(maildir / DELETED[0], DELETED[1]).unlink()
    return new


def expected_after_changes(new, also_deleted=()):
    """seed_expected() with the local changes applied."""
    exp = seed_expected()
    exp["Projects/2025"] = {}
    for box, key in (DELETED,) + tuple(also_deleted):
        del exp[box][key]
    for box, key, flags in CHANGED_FLAGS:
        exp[box][key] = (maildir_flags(":2," + flags), exp[box][key][1])
    for box, data, flags in new:
        exp[box][message_key(data)] = (maildir_flags(":2," + flags),
                                       crlf(data))
    return exp


def as_local(exp):
    """What a Maildir holds for EXP: the same messages with LF lines."""
    return {box: {k: (f, lf(b)) for k, (f, b) in msgs.items()}
            for box, msgs in exp.items()}


# ---- running clients --------------------------------------------------------

def client_env(home):
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
            "TZ": "UTC", "TMPDIR": str(home)}


def run_client(argv, home, what):
    exe = shutil.which(argv[0])
    assert exe, "%s is not installed (scripts/deps.sh installs it)" % argv[0]
    try:
        proc = subprocess.run([exe] + [str(a) for a in argv[1:]],
                              capture_output=True, timeout=TIMEOUT,
                              stdin=subprocess.DEVNULL, env=client_env(home),
                              cwd=str(home))
    except subprocess.TimeoutExpired as e:
        raise AssertionError("%s (%s) did not finish in %d s:\n%s" % (
            argv[0], what, TIMEOUT,
            ((e.stdout or b"") + (e.stderr or b"")).decode(
                errors="replace")[-6000:])) from None
    return proc


def output(proc):
    return (proc.stdout + proc.stderr).decode("utf-8", errors="replace")


def check_localhost(stack):
    addrs = {ai[4][0] for ai in socket.getaddrinfo(
        TLS_HOST, None, socket.AF_INET, socket.SOCK_STREAM)}
    assert stack.host in addrs, (
        "the clients connect to %s (for the certificate's DNS name); it must "
        "resolve to %s, got %s" % (TLS_HOST, stack.host, addrs))


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


# ---- mbsync -----------------------------------------------------------------

MBSYNC_WRITES = re.compile(
    r">>> \d+ (APPEND|UID STORE|STORE|EXPUNGE|UID EXPUNGE|CREATE|DELETE|"
    r"RENAME|COPY|UID COPY|MOVE|UID MOVE)\b")
TUID_RE = re.compile(rb"(\r?\n)X-TUID: [A-Za-z0-9+/]{12}\r?\n(\r?\n)")
HEADER_END_RE = re.compile(rb"\r?\n\r?\n")


def mbsync_config(stack, home, user):
    maildir = home / "Mail"
    maildir.mkdir()
    rc = write(home / "mbsyncrc", """\
        IMAPAccount portico
        Host %s
        Port %d
        User %s
        Pass "%s"
        SSLType IMAPS
        CertificateFile %s
        SystemCertificates no
        Timeout 30

        IMAPStore remote
        Account portico

        MaildirStore local
        Path %s/
        Inbox %s/INBOX
        SubFolders Verbatim

        Channel portico
        Far :remote:
        Near :local:
        Patterns *
        Sync All
        Create Both
        Expunge Both
        CopyArrivalDate yes
        SyncState *
        """ % (TLS_HOST, stack.IMAPS_PORT, user[0], user[1], stack.CA_FILE,
               maildir, maildir))
    return rc, maildir


def mbsync(home, rc, what):
    # -D: the whole protocol exchange ("F: >>> tag command" / "F: * ...")
    proc = run_client(["mbsync", "-c", rc, "-D", "portico"], home, what)
    out = output(proc)
    assert proc.returncode == 0, "mbsync (%s) failed:\n%s" % (
        what, protocol_tail(out, r"^F: "))
    return out


def protocol_tail(out, pattern, n=80):
    """The last N protocol lines of a client's debug output, and any
    error lines (for assertion messages)."""
    keep = [line for line in out.splitlines()
            if re.search(pattern, line) or re.search(
                r"(?i)error|traceback|exception|warning", line)]
    return "\n".join(keep[-n:]) + "\n--- last output lines ---\n" + \
        "\n".join(out.splitlines()[-30:])


def strip_tuid(state):
    """mbsync marks every message it copies (in both directions) with an
    X-TUID header as the last header line; return STATE without it and
    the (mailbox, key) pairs that had one."""
    marked = set()
    out = {}
    for box, msgs in state.items():
        out[box] = {}
        for key, (flags, data) in msgs.items():
            m = TUID_RE.search(data)
            if m and m.end() == HEADER_END_RE.search(data).end():
                data = data[:m.start()] + m.group(1) + m.group(2) + \
                    data[m.end():]
                marked.add((box, key))
            out[box][key] = (flags, data)
    return out, marked


def imapdate(epoch):
    return time.strftime("%d-%b-%Y %H:%M:%S +0000", time.gmtime(epoch))


def test_mbsync_two_way_sync(stack, tmp_path):
    check_localhost(stack)
    user = stack.new_user("mbsync")
    seed_server(stack, user)
    rc, maildir = mbsync_config(stack, tmp_path, user)

    # 1. Down: the whole tree arrives, byte for byte (as LF), with flags
    #    and with the INTERNALDATE as the file's mtime (CopyArrivalDate).
    out = mbsync(tmp_path, rc, "first sync")
    assert "SELECT \"%s\"" % UTF7_NAME in out
    expected = seed_expected()
    local, marked = strip_tuid(maildir_state(maildir))
    assert set(local) == SEED_FOLDERS
    assert local == as_local(expected)
    downloaded = {(box, k) for box, msgs in expected.items() for k in msgs}
    assert marked == downloaded
    for folder in maildir_folders(maildir).values():
        for key, (_, _, path) in maildir_messages(folder).items():
            assert int(path.stat().st_mtime) == SEED_EPOCH, (path, key)
    # mbsync itself changed nothing on the server
    assert flags_and_bytes(server_state(stack, user)) == expected

    # 2. Local changes (make_local_changes), and a message marked trashed
    #    (T) for Expunge Both.
    local_new_epoch = calendar.timegm((2023, 3, 4, 5, 6, 7))
    new = make_local_changes(maildir, b"mb", UTF7_NAME, mtime=local_new_epoch)
    set_local_flags(find_local(maildir / "Archive", "<arch1@example.org>"),
                    "ST")

    # 3. Up.
    mbsync(tmp_path, rc, "sync up")

    # 4. The server, message by message.
    state = server_state(stack, user)
    got, marked = strip_tuid(flags_and_bytes(state))
    trashed = ("Archive", "<arch1@example.org>")
    exp = expected_after_changes(new, also_deleted=[trashed])
    assert got == exp
    # (the messages mbsync uploaded carry its X-TUID header)
    assert marked == {(box, message_key(data)) for box, data, _ in new}
    # the deleted message is gone for good, not just flagged
    assert "<in1@example.org>" not in state["INBOX"]
    assert "<arch1@example.org>" not in state["Archive"]
    assert sorted(v[0] for v in state["INBOX"].values()) == [2, 3, 4, 5]
    # the arrival date travelled with the new messages
    for box, key in marked:
        assert state[box][key][2] == imapdate(local_new_epoch), (box, key)
    # and the local side agrees (nothing left flagged as trashed)
    local, local_marked = strip_tuid(maildir_state(maildir))
    assert local == as_local(exp)
    assert local_marked == downloaded - {DELETED, trashed}

    # 5. Again: nothing to do, nothing changes on either side.
    before_local = tree_snapshot(maildir)
    out = mbsync(tmp_path, rc, "idempotent sync")
    writes = [line for line in out.splitlines() if MBSYNC_WRITES.search(line)]
    assert writes == []
    assert tree_snapshot(maildir) == before_local
    assert server_state(stack, user) == state


# ---- offlineimap3 -----------------------------------------------------------

def offlineimap_config(stack, home, user):
    maildir = home / "Mail"
    maildir.mkdir()
    rc = write(home / "offlineimaprc", """\
        [general]
        accounts = portico
        metadata = %s/offlineimap-state
        maxsyncaccounts = 1
        ui = basic

        [Account portico]
        localrepository = local
        remoterepository = remote
        utf8foldernames = yes

        [Repository local]
        type = Maildir
        localfolders = %s
        sep = /

        [Repository remote]
        type = IMAP
        remotehost = %s
        remoteport = %d
        remoteuser = %s
        remotepass = %s
        ssl = yes
        sslcacertfile = %s
        maxconnections = 1
        holdconnectionopen = no
        expunge = yes
        """ % (home, maildir, TLS_HOST, stack.IMAPS_PORT, user[0], user[1],
               stack.CA_FILE))
    return rc, maildir


OFFLINEIMAP_WRITES = re.compile(
    r"writer > b'\S+ (APPEND|UID STORE|STORE|EXPUNGE|UID EXPUNGE|CREATE|"
    r"DELETE|RENAME|COPY|UID COPY|MOVE|UID MOVE)\b")


def offlineimap(home, rc, what):
    # -d imap: the protocol exchange ("writer > b'...'", "reader < b'...'")
    proc = run_client(["offlineimap", "-c", rc, "-o", "-u", "basic",
                       "-d", "imap"], home, what)
    out = output(proc)
    assert proc.returncode == 0 and "ERROR" not in out, \
        "offlineimap (%s) failed, rc %d:\n%s" % (
            what, proc.returncode,
            protocol_tail(out, r"writer > |reader < |^Copy|^Delet|^Adding|"
                          r"^Removing|^Syncing"))
    return out


OI_LOCAL_NAMES = {"Entwürfe": UTF7_NAME}


def test_offlineimap_two_way_sync(stack, tmp_path):
    check_localhost(stack)
    user = stack.new_user("oimap")
    seed_server(stack, user)
    rc, maildir = offlineimap_config(stack, tmp_path, user)

    # 1. Down: with utf8foldernames the UTF-7 folder is "Entwürfe" locally.
    offlineimap(tmp_path, rc, "first sync")
    expected = seed_expected()
    assert set(maildir_folders(maildir)) == \
        (SEED_FOLDERS - {UTF7_NAME}) | {"Entwürfe"}
    assert maildir_state(maildir, OI_LOCAL_NAMES) == as_local(expected)
    assert flags_and_bytes(server_state(stack, user)) == expected

    # 2. Local changes.
    new = make_local_changes(maildir, b"oi", "Entwürfe")

    # 3. Up.
    offlineimap(tmp_path, rc, "sync up")

    # 4. The server, message by message.
    state = server_state(stack, user)
    exp = expected_after_changes(new)
    assert flags_and_bytes(state) == exp
    assert DELETED[1] not in state["INBOX"]
    assert sorted(v[0] for v in state["INBOX"].values()) == [2, 3, 4, 5]
    assert maildir_state(maildir, OI_LOCAL_NAMES) == as_local(exp)

    # 5. Again: nothing changes on either side.
    before_local = tree_snapshot(maildir)
    out = offlineimap(tmp_path, rc, "idempotent sync")
    writes = [line for line in out.splitlines()
              if OFFLINEIMAP_WRITES.search(line)]
    assert writes == []
    assert tree_snapshot(maildir) == before_local
    assert server_state(stack, user) == state


# ---- curl -------------------------------------------------------------------

def curl(stack, user, path, *extra, home):
    url = "imaps://%s:%d/%s" % (stack.host, stack.IMAPS_PORT, path)
    proc = run_client(["curl", "-q", "--silent", "--show-error",
                       "--max-time", str(TIMEOUT), "--cacert", stack.CA_FILE,
                       "--user", "%s:%s" % user, *extra, url], home,
                      "curl " + url)
    assert proc.returncode == 0, "curl %s %s failed (rc %d):\n%s" % (
        " ".join(extra), url, proc.returncode, output(proc))
    return proc.stdout


def curl_verbose(stack, user, path, *extra, home):
    """The client/server exchange of one curl run (for failure messages)."""
    url = "imaps://%s:%d/%s" % (stack.host, stack.IMAPS_PORT, path)
    proc = run_client(["curl", "-q", "-v", "--max-time", str(TIMEOUT),
                       "--cacert", stack.CA_FILE, "--user", "%s:%s" % user,
                       *extra, url], home, "curl -v " + url)
    return "\n".join(line for line in output(proc).splitlines()
                     if line[:2] in ("> ", "< ", "* "))


CURL_INBOX = [
    server_msg(b"c1", b"first of three"),
    server_msg(b"c2", b"x marks the spot"),
    server_msg(b"c3", b"another x here"),
]


@pytest.fixture
def curl_user(stack):
    """A user with INBOX = CURL_INBOX (unseen), Projects/2024 and the UTF-7
    folder with one message each."""
    user = stack.new_user("curl")
    c = stack.imap(*user)
    try:
        for name in ("Projects/2024", UTF7_NAME):
            assert c.create(name)[0] == "OK"
        for msg in CURL_INBOX:
            assert c.append("INBOX", None, '"%s"' % SEED_DATE, msg)[0] == "OK"
        assert c.append("Projects/2024", None, None,
                        server_msg(b"cp", b"nested"))[0] == "OK"
        assert c.append(UTF7_NAME, None, None,
                        SEED[UTF7_NAME][0][0])[0] == "OK"
    finally:
        c.logout()
    return user


def test_curl_lists_mailboxes(stack, curl_user, tmp_path):
    got = curl(stack, curl_user, "", home=tmp_path)
    c = stack.imap(*curl_user)
    typ, data = c.list('""', "*")
    c.logout()
    assert got == b"".join(b"* LIST " + line + b"\r\n" for line in data)
    names = {re.match(rb'\* LIST \([^)]*\) "/" "(.*)"\r$', line).group(1)
             for line in got.split(b"\n") if line}
    assert names == {n.encode() for n in PROVISIONED | {
        "Projects", "Projects/2024", UTF7_NAME}}
    assert b'* LIST (\\HasChildren) "/" "Projects"\r\n' in got
    assert b'* LIST (\\HasNoChildren \\Sent) "/" "Sent"\r\n' in got


def inbox_flags(stack, user):
    c = stack.imap(*user)
    try:
        c.select("INBOX", readonly=True)
        typ, data = c.uid("FETCH", "1:*", "(FLAGS)")
        assert typ == "OK", data
        return data
    finally:
        c.logout()


def test_curl_fetches_by_uid(stack, curl_user, tmp_path):
    assert curl(stack, curl_user, "INBOX;UID=1", home=tmp_path) == \
        CURL_INBOX[0]
    assert curl(stack, curl_user, "INBOX;UID=3", home=tmp_path) == \
        CURL_INBOX[2]
    assert curl(stack, curl_user, "Projects/2024;UID=1", home=tmp_path) == \
        server_msg(b"cp", b"nested")
    assert curl(stack, curl_user, "%s;UID=1" % UTF7_NAME, home=tmp_path) == \
        SEED[UTF7_NAME][0][0]
    # curl fetches BODY[] (not PEEK): the server set \Seen on exactly the
    # two messages fetched from INBOX.
    assert inbox_flags(stack, curl_user) == [
        b"1 (UID 1 FLAGS (\\Seen))", b"2 (UID 2 FLAGS ())",
        b"3 (UID 3 FLAGS (\\Seen))"]
    # sections and partial fetches
    assert curl(stack, curl_user,
                "INBOX;UID=2;SECTION=HEADER.FIELDS%20(SUBJECT)",
                home=tmp_path) == b"Subject: x marks the spot\r\n\r\n"
    assert curl(stack, curl_user, "INBOX;UID=2;SECTION=TEXT",
                home=tmp_path) == b"Body of c2.\r\nSecond line.\r\n"
    assert curl(stack, curl_user, "INBOX;UID=2;PARTIAL=0.13",
                home=tmp_path) == CURL_INBOX[1][:13]
    assert curl(stack, curl_user, "INBOX;UID=2;PARTIAL=6.6",
                home=tmp_path) == b"Sender"
    assert inbox_flags(stack, curl_user) == [
        b"1 (UID 1 FLAGS (\\Seen))", b"2 (UID 2 FLAGS (\\Seen))",
        b"3 (UID 3 FLAGS (\\Seen))"]
    # a UID that does not exist is an error, not an empty message
    url = "imaps://%s:%d/INBOX;UID=9" % (stack.host, stack.IMAPS_PORT)
    proc = run_client(["curl", "-q", "-sS", "--max-time", str(TIMEOUT),
                       "--cacert", stack.CA_FILE, "--user",
                       "%s:%s" % curl_user, url], tmp_path, "curl UID=9")
    assert proc.returncode != 0 and proc.stdout == b"", output(proc)


def test_curl_examines_mailbox(stack, curl_user, tmp_path):
    c = stack.imap(*curl_user)
    typ, data = c.status("INBOX", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN)")
    c.logout()
    m = re.search(rb"UIDNEXT (\d+) UIDVALIDITY (\d+)", data[0])
    uidnext, uidvalidity = int(m.group(1)), int(m.group(2))
    assert uidnext == 4
    got = curl(stack, curl_user, "", "-X", "EXAMINE INBOX", home=tmp_path)
    trace = curl_verbose(stack, curl_user, "", "-X", "EXAMINE INBOX",
                         home=tmp_path)
    assert got.endswith(b"\r\n"), trace
    lines = got.split(b"\r\n")[:-1]
    # the RFC 3501 responses, in this order; other response codes (of
    # extensions the server announces, e.g. MAILBOXID) may follow
    assert lines[:7] == [
        b"* 3 EXISTS",
        b"* 0 RECENT",
        b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
        b"* OK [PERMANENTFLAGS ()] Flags permitted",
        b"* OK [UNSEEN 1] First unseen",
        b"* OK [UIDVALIDITY %d] UIDs valid" % uidvalidity,
        b"* OK [UIDNEXT %d] Predicted next UID" % uidnext,
    ], trace
    for line in lines[7:]:
        assert re.match(rb"\* OK \[(MAILBOXID|HIGHESTMODSEQ|NOMODSEQ)\b",
                        line), trace
    got = curl(stack, curl_user, "", "-X", 'EXAMINE "Projects/2024"',
               home=tmp_path)
    assert b"* 1 EXISTS\r\n" in got and b"[PERMANENTFLAGS ()]" in got
    # EXAMINE is read-only: nothing changed.
    c = stack.imap(*curl_user)
    assert c.status("INBOX", "(MESSAGES UIDNEXT UIDVALIDITY UNSEEN)") == \
        (typ, data)
    c.logout()


def test_curl_searches(stack, curl_user, tmp_path):
    got = curl(stack, curl_user, "INBOX", "-X", "SEARCH SUBJECT x",
               home=tmp_path)
    assert got == b"* SEARCH 2 3\r\n"
    got = curl(stack, curl_user, "INBOX", "-X", "UID SEARCH SUBJECT first",
               home=tmp_path)
    assert got == b"* SEARCH 1\r\n"
    # the URL form (RFC 5092 search): imaps://host/INBOX?SUBJECT%20x
    got = curl(stack, curl_user, "INBOX?SUBJECT%20spot", home=tmp_path)
    assert got == b"* SEARCH 2\r\n"
    got = curl(stack, curl_user, "INBOX", "-X", "SEARCH SUBJECT nothing",
               home=tmp_path)
    assert got == b"* SEARCH\r\n"
    c = stack.imap(*curl_user)
    c.select("INBOX", readonly=True)
    assert c.search(None, "SUBJECT", "x") == ("OK", [b"2 3"])
    c.logout()


def test_curl_appends(stack, curl_user, tmp_path):
    up1 = server_msg(b"up1", b"uploaded by curl",
                     body=b"with two\r\nlines\r\n")
    up2 = server_msg(b"up2", b"uploaded into a nested folder")
    up3 = server_msg(b"up3", b"hochgeladen")
    for name, data in (("up1.eml", up1), ("up2.eml", up2),
                       ("up3.eml", up3)):
        (tmp_path / name).write_bytes(data)
    assert curl(stack, curl_user, "INBOX", "-T", tmp_path / "up1.eml",
                home=tmp_path) == b""
    assert curl(stack, curl_user, "Projects/2024", "-T",
                tmp_path / "up2.eml", home=tmp_path) == b""
    assert curl(stack, curl_user, UTF7_NAME, "-T", tmp_path / "up3.eml",
                home=tmp_path) == b""
    state = server_state(stack, curl_user)
    # curl APPENDs with (\Seen); UIDs follow on.
    assert {k: (v[0], v[1], v[3]) for k, v in state["INBOX"].items()} == {
        "<c1@example.org>": (1, frozenset(), CURL_INBOX[0]),
        "<c2@example.org>": (2, frozenset(), CURL_INBOX[1]),
        "<c3@example.org>": (3, frozenset(), CURL_INBOX[2]),
        "<up1@example.org>": (4, frozenset({"\\Seen"}), up1),
    }
    assert {k: (v[0], v[1], v[3])
            for k, v in state["Projects/2024"].items()} == {
        "<cp@example.org>": (1, frozenset(), server_msg(b"cp", b"nested")),
        "<up2@example.org>": (2, frozenset({"\\Seen"}), up2),
    }
    assert {k: (v[0], v[1], v[3]) for k, v in state[UTF7_NAME].items()} == {
        "<draft-de@example.org>": (1, frozenset(), SEED[UTF7_NAME][0][0]),
        "<up3@example.org>": (2, frozenset({"\\Seen"}), up3),
    }
    # and curl reads back what it stored
    assert curl(stack, curl_user, "INBOX;UID=4", home=tmp_path) == up1
    # an upload to a mailbox that does not exist fails
    url = "imaps://%s:%d/Nowhere" % (stack.host, stack.IMAPS_PORT)
    proc = run_client(["curl", "-q", "-sS", "--max-time", str(TIMEOUT),
                       "--cacert", stack.CA_FILE, "--user",
                       "%s:%s" % curl_user, "-T", tmp_path / "up1.eml", url],
                      tmp_path, "curl -T Nowhere")
    assert proc.returncode != 0, output(proc)
    assert "Nowhere" not in list_names_of(stack, curl_user)


def list_names_of(stack, user):
    c = stack.imap(*user)
    try:
        return list_names(c)
    finally:
        c.logout()


# ---- the server behaviour offlineimap3 tripped over -------------------------

def test_own_flag_changes_are_not_echoed(stack):
    """A session's own STORE must not come back as an unsolicited FETCH
    with the next command (RFC 3501 6.4.6: .SILENT returns no new value;
    unsolicited FETCH is for changes from an external source).  offlineimap3
    takes every FETCH response of its UID STORE as the result: an echo of
    its \\Deleted STORE, delivered during EXPUNGE, reached its next UID
    STORE for a UID it had already dropped (KeyError, INBOX sync aborted).
    Seen with builds before 1760dad; kept as the minimal reproduction."""
    user = stack.new_user("echo")
    c = stack.imap(*user)
    try:
        for i in range(1, 4):
            c.append("INBOX", None, None, server_msg(b"e%d" % i, b"echo"))
        c.select("INBOX")
        typ, data = c.uid("STORE", "1", "+FLAGS.SILENT", "(\\Seen)")
        assert typ == "OK" and data == [None]
        typ, data = c.noop()
        assert c.untagged_responses.pop("FETCH", []) == []
        typ, data = c.uid("STORE", "2", "+FLAGS", "(\\Flagged)")
        assert data == [b"2 (UID 2 FLAGS (\\Flagged))"]
        c.noop()
        assert c.untagged_responses.pop("FETCH", []) == []
        typ, data = c.uid("STORE", "3", "+FLAGS", "(\\Deleted)")
        assert data == [b"3 (UID 3 FLAGS (\\Deleted))"]
        typ, data = c.expunge()
        assert data == [b"3"]
        assert c.untagged_responses.pop("FETCH", []) == []
    finally:
        c.logout()
