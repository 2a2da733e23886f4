"""How users learn their settings: the frontend's HTTP(S) listener
(Thunderbird autoconfig, Outlook POX autodiscover, the page "Settings for
POP or IMAP access" signed in against LDAP), its bounds (431, 413, 400,
keep-alive) and `portico-admin dns-srv`.

One stack for the module, its connection settings replaced by fixed
names so that every field can be asserted:

    connection.imap_internal = imap.int.example.test:993:SSL,
                               1=imap.site1.example.test:143:TLS,
                               2=imap.site2.example.test:143:TLS
    connection.imap_external = imap.example.test:993:SSL,
                               imap.example.test:143:TLS
    connection.pop3_internal = pop.int.example.test:110:
    connection.pop3_external = pop.example.test:995:SSL
    connection.smtp_internal = smtp.int.example.test:587:TLS
    connection.smtp_external = smtp.example.test:465:SSL,
                               smtp.example.test:587:TLS
    connection.smtp_advertise = yes
    http.max_header_size = 2k, http.max_body_size = 4k
    http.hsts_max_age = 30d
    ldap.privileged_attribute = employeeType=administrator

The settings page is also driven in headless Chromium (Debian's
chromium): a user signs in on the page itself (through the DevTools
protocol on a pipe, the page having no script of its own) and a picture
of the result is kept under the test's tmp dir; a local page that posts
the form from elsewhere shows the cross-site refusal (--dump-dom).
"""

import base64
import datetime
import fcntl
import html.parser
import http.client
import json
import os
import re
import select
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.parse
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import REPO, wait_for

pytestmark = pytest.mark.daemons

SETTINGS = [
    "connection.imap_internal=imap.int.example.test:993:SSL,"
    "1=imap.site1.example.test:143:TLS,2=imap.site2.example.test:143:TLS",
    "connection.imap_external=imap.example.test:993:SSL,"
    "imap.example.test:143:TLS,2=imap.site2.example.test:993:SSL",
    "connection.pop3_internal=pop.int.example.test:110:",
    "connection.pop3_external=pop.example.test:995:SSL",
    "connection.smtp_internal=smtp.int.example.test:587:TLS",
    "connection.smtp_external=smtp.example.test:465:SSL,"
    "smtp.example.test:587:TLS",
    "connection.smtp_advertise=yes",
    "http.max_header_size=2k",
    "http.max_body_size=4k",
    "http.request_timeout=2s",
    "http.hsts_max_age=30d",
    "ldap.privileged_attribute=employeeType=administrator",
]

AC_NS = "{http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006}"
AD_NS = ("{http://schemas.microsoft.com/exchange/autodiscover/outlook/"
         "responseschema/2006a}")
AD_REQUEST = """<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>%s</EMailAddress>
    <AcceptableResponseSchema>%s</AcceptableResponseSchema>
  </Request>
</Autodiscover>
"""
OUTLOOK_SCHEMA = ("http://schemas.microsoft.com/exchange/autodiscover/"
                  "outlook/responseschema/2006a")


@pytest.fixture(scope="module")
def st(stack_factory):
    return stack_factory(name="http", settings=SETTINGS)


def https(st, timeout=10):
    ctx = st.ssl_context()
    return http.client.HTTPSConnection(st.host, st.HTTPS_PORT,
                                       context=ctx, timeout=timeout)


def plain(st, timeout=10):
    return http.client.HTTPConnection(st.host, st.HTTP_PORT,
                                      timeout=timeout)


def request(conn, method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    return r.status, dict((k.lower(), v) for k, v in r.getheaders()), \
        r.read()


def sign_in(st, user, password, conn=None, headers=None):
    conn = conn or https(st)
    body = urllib.parse.urlencode({"user": user, "password": password})
    return request(conn, "POST", "/settings", body,
                   dict({"Content-Type": "application/x-www-form-urlencoded"},
                        **(headers or {})))


class SettingsPage(html.parser.HTMLParser):
    """The rows of the settings tables and the page's messages."""

    def __init__(self):
        super().__init__()
        self.rows = []          # (protocol, where, host, port, encryption)
        self.notes = {}         # section id -> texts of <p class="note">
        self.message = None
        self.login = None
        self.apple = None       # the configuration profile's link
        self.title = None
        self._row = None
        self._cell = None
        self._text = None
        self._section = None
        self._capture = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self._section = a.get("id")
        if tag == "tr" and a.get("class") == "setting":
            self._row = {"protocol": a["data-protocol"],
                         "where": a["data-where"]}
        if tag == "td" and self._row is not None and a.get("class"):
            self._cell = a["class"]
            self._text = ""
        if tag == "p" and a.get("id") == "message":
            self._capture, self._text = "message", ""
        if tag == "p" and a.get("class") == "note" and self._section:
            self._capture, self._text = "note", ""
        if tag == "strong" and a.get("id") == "login":
            self._capture, self._text = "login", ""
        if tag == "title":
            self._capture, self._text = "title", ""
        if tag == "a" and self._capture == "apple":
            self.apple = a.get("href")
        if tag == "p" and a.get("id") == "apple":
            self._capture, self._text = "apple", ""

    def handle_data(self, data):
        if self._text is not None:
            self._text += data

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self._row[self._cell] = self._text
            self._cell = self._text = None
        elif tag == "tr" and self._row is not None:
            r = self._row
            self.rows.append((r["protocol"], r["where"], r["host"],
                              int(r["port"]), r["encryption"]))
            self._row = None
        elif self._capture and tag in ("p", "strong", "title"):
            if self._capture == "message":
                self.message = self._text
            elif self._capture == "note":
                self.notes.setdefault(self._section, []).append(self._text)
            elif self._capture == "login":
                self.login = self._text
            elif self._capture == "title":
                self.title = self._text
            if tag == "p" or self._capture != "apple":
                self._capture = self._text = None
        elif tag == "section":
            self._section = None


def parse_page(body):
    p = SettingsPage()
    p.feed(body.decode() if isinstance(body, bytes) else body)
    return p


def ldap_modify(st, ldif):
    subprocess.run(
        ["ldapmodify", "-x", "-H", st.LDAP_URI, "-D", st.LDAP_ADMIN_DN,
         "-w", st.LDAP_ADMIN_PASSWORD],
        input=ldif.encode(), check=True, capture_output=True, timeout=30)


SITE1_ROWS = [
    ("IMAP", "internal", "imap.int.example.test", 993, "SSL/TLS"),
    ("IMAP", "internal", "imap.site1.example.test", 143, "STARTTLS"),
    ("IMAP", "external", "imap.example.test", 993, "SSL/TLS"),
    ("IMAP", "external", "imap.example.test", 143, "STARTTLS"),
    ("POP3", "internal", "pop.int.example.test", 110, "None"),
    ("POP3", "external", "pop.example.test", 995, "SSL/TLS"),
    ("SMTP", "internal", "smtp.int.example.test", 587, "STARTTLS"),
    ("SMTP", "external", "smtp.example.test", 465, "SSL/TLS"),
    ("SMTP", "external", "smtp.example.test", 587, "STARTTLS"),
]


# -- Thunderbird autoconfig ---------------------------------------------------

def servers(root, tag):
    return [(s.get("type"), s.findtext("hostname"), int(s.findtext("port")),
             s.findtext("socketType"), s.findtext("authentication"),
             s.findtext("username"))
            for s in root.iter(tag)]


@pytest.mark.parametrize("path", ["/mail/config-v1.1.xml",
                                  "/.well-known/autoconfig/mail/"
                                  "config-v1.1.xml"])
def test_autoconfig(st, path):
    status, hdrs, body = request(
        plain(st), "GET", path + "?emailaddress=someone%40example.test")
    assert status == 200, body
    assert hdrs["content-type"] == "application/xml; charset=utf-8"
    root = ET.fromstring(body)
    assert root.tag == "clientConfig" and root.get("version") == "1.1"
    providers = root.findall("emailProvider")
    assert len(providers) == 1
    p = providers[0]
    assert p.get("id") == "example.test"
    assert [d.text for d in p.findall("domain")] == ["example.test"]
    assert p.findtext("displayName") == "Mail"
    assert p.findtext("displayShortName") == "Mail"
    u = "%EMAILADDRESS%"
    # only the external settings that apply to every site
    assert servers(p, "incomingServer") == [
        ("imap", "imap.example.test", 993, "SSL", "password-cleartext", u),
        ("imap", "imap.example.test", 143, "STARTTLS", "password-cleartext",
         u),
        ("pop3", "pop.example.test", 995, "SSL", "password-cleartext", u),
    ]
    assert servers(p, "outgoingServer") == [
        ("smtp", "smtp.example.test", 465, "SSL", "password-cleartext", u),
        ("smtp", "smtp.example.test", 587, "STARTTLS", "password-cleartext",
         u),
    ]
    # every element accounted for
    assert sorted(c.tag for c in p) == sorted(
        ["domain", "displayName", "displayShortName"] +
        ["incomingServer"] * 3 + ["outgoingServer"] * 2)


def test_autoconfig_over_https_and_bad_address(st):
    conn = https(st)
    status, _, body = request(conn, "GET", "/mail/config-v1.1.xml?"
                              "emailaddress=a%40example.test")
    assert status == 200
    assert ET.fromstring(body).find("emailProvider").get("id") == \
        "example.test"
    for bad in ["%3Cscript%3E%40example.test", "no-at-sign",
                "a%40exa%22mple.test", "a%40%00.test", "%ZZ"]:
        status, _, body = request(plain(st), "GET",
                                  "/mail/config-v1.1.xml?emailaddress=" + bad)
        assert status == 400, (bad, body)
        assert b"<script" not in body
    status, hdrs, _ = request(plain(st), "POST", "/mail/config-v1.1.xml",
                              "x")
    assert status == 405 and hdrs["allow"] == "GET, HEAD"


# -- Apple configuration profile ---------------------------------------------

def signed_content(st, der):
    """What a CMS signature (DER) signed, once OpenSSL has verified it
    against the stack's CA and found the frontend's mail certificate the
    signer."""
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "in.der").write_bytes(der)
        p = subprocess.run(
            ["openssl", "cms", "-verify", "-inform", "DER", "-in",
             str(Path(d) / "in.der"), "-CAfile", st.env["CA_FILE"],
             "-purpose", "any", "-signer", str(Path(d) / "signer.pem"),
             "-out", str(Path(d) / "out")],
            capture_output=True, timeout=30)
        assert p.returncode == 0 and b"Verification successful" in \
            p.stderr, p.stderr
        signer = (Path(d) / "signer.pem").read_text()
        mail = (st.dir / "certs" / "mail.pem").read_text()
        assert signer.strip() in mail, (signer, mail)
        return (Path(d) / "out").read_bytes()


def test_apple_configuration_profile(st):
    """GET /mail/apple.mobileconfig?emailaddress=ADDR: a configuration
    profile Apple's Mail installs (a property list, signed with the
    frontend's certificate for the host name): IMAP over implicit
    TLS (POP3 with protocol=pop3), submission over implicit TLS with the
    same password, ADDR as the user name and no password; the same
    identifiers for the same address (a new download replaces the
    profile), others for another; bad requests get 400."""
    import plistlib

    def profile(query, conn=None):
        status, hdrs, body = request(conn or plain(st), "GET",
                                     "/mail/apple.mobileconfig?" + query)
        assert status == 200, body
        assert hdrs["content-type"] == "application/x-apple-aspen-config"
        assert hdrs["content-disposition"] == \
            'attachment; filename="mail.mobileconfig"'
        return plistlib.loads(signed_content(st, body))

    p = profile("emailaddress=dora%40example.test")
    assert (p["PayloadType"], p["PayloadVersion"],
            p["PayloadDisplayName"], p["PayloadRemovalDisallowed"]) == \
        ("Configuration", 1, "Mail", False)
    (acct,) = p["PayloadContent"]
    assert acct == {
        "EmailAccountDescription": "Mail",
        "EmailAccountType": "EmailTypeIMAP",
        "EmailAddress": "dora@example.test",
        "IncomingMailServerAuthentication": "EmailAuthPassword",
        "IncomingMailServerHostName": "imap.example.test",
        "IncomingMailServerPortNumber": 993,
        "IncomingMailServerUseSSL": True,
        "IncomingMailServerUsername": "dora@example.test",
        "OutgoingMailServerAuthentication": "EmailAuthPassword",
        "OutgoingMailServerHostName": "smtp.example.test",
        "OutgoingMailServerPortNumber": 465,
        "OutgoingMailServerUseSSL": True,
        "OutgoingMailServerUsername": "dora@example.test",
        "OutgoingPasswordSameAsIncomingPassword": True,
        "PayloadDisplayName": "dora@example.test",
        "PayloadIdentifier": "mail.account." + acct["PayloadUUID"],
        "PayloadType": "com.apple.mail.managed",
        "PayloadUUID": acct["PayloadUUID"],
        "PayloadVersion": 1,
    }, acct
    uuid_re = r"[0-9A-F]{8}-[0-9A-F]{4}-5[0-9A-F]{3}-[89AB][0-9A-F]{3}-" \
        r"[0-9A-F]{12}"
    assert re.fullmatch(uuid_re, acct["PayloadUUID"])
    assert re.fullmatch(uuid_re, p["PayloadUUID"])
    assert p["PayloadIdentifier"] == "mail.profile." + p["PayloadUUID"]
    assert p["PayloadUUID"] != acct["PayloadUUID"]
    # the same address, over HTTPS too: the same profile
    assert profile("emailaddress=dora%40example.test", https(st)) == p
    other = profile("emailaddress=eve%40example.test")
    assert other["PayloadUUID"] != p["PayloadUUID"]
    assert other["PayloadContent"][0]["PayloadUUID"] != acct["PayloadUUID"]
    # POP3 when asked; an address with characters XML escapes
    pop = profile("emailaddress=a%26b%40example.test&protocol=pop3")
    (acct,) = pop["PayloadContent"]
    assert (acct["EmailAccountType"], acct["IncomingMailServerHostName"],
            acct["IncomingMailServerPortNumber"],
            acct["IncomingMailServerUsername"], acct["EmailAddress"]) == \
        ("EmailTypePOP", "pop.example.test", 995, "a&b@example.test",
         "a&b@example.test")
    # a site with public entries of its own (IMAP): those; one without
    # (site 1): those for every site
    (acct,) = profile("emailaddress=dora%40example.test&site=2")[
        "PayloadContent"]
    assert (acct["IncomingMailServerHostName"],
            acct["IncomingMailServerPortNumber"],
            acct["OutgoingMailServerHostName"]) == \
        ("imap.site2.example.test", 993, "smtp.example.test"), acct
    assert profile("emailaddress=dora%40example.test&site=1") == p
    for bad in ["", "emailaddress=no-at-sign",
                "emailaddress=%3Cscript%3E%40example.test",
                "emailaddress=a%40example.test&protocol=jmap",
                "emailaddress=a%40example.test&site=",
                "emailaddress=a%40example.test&site=0",
                "emailaddress=a%40example.test&site=65536",
                "emailaddress=a%40example.test&site=2x",
                "emailaddress=a%40example.test&site=99999999"]:
        status, _, body = request(plain(st), "GET",
                                  "/mail/apple.mobileconfig?" + bad)
        assert status == 400, (bad, body)
        assert b"<script" not in body
    status, hdrs, _ = request(plain(st), "POST", "/mail/apple.mobileconfig",
                              "x")
    assert status == 405 and hdrs["allow"] == "GET, HEAD"


# -- Outlook autodiscover -----------------------------------------------------

def test_autodiscover(st):
    body = AD_REQUEST % ("dora@example.test", OUTLOOK_SCHEMA)
    status, hdrs, resp = request(https(st), "POST",
                                 "/autodiscover/autodiscover.xml",
                                 body, {"Content-Type": "text/xml"})
    assert status == 200, resp
    assert hdrs["content-type"] == "application/xml; charset=utf-8"
    root = ET.fromstring(resp)
    assert root.tag == AC_NS + "Autodiscover"
    r = root.find(AD_NS + "Response")
    assert r.find(AD_NS + "User").findtext(AD_NS + "DisplayName") == \
        "dora@example.test"
    acct = r.find(AD_NS + "Account")
    assert acct.findtext(AD_NS + "AccountType") == "email"
    assert acct.findtext(AD_NS + "Action") == "settings"
    protos = []
    for p in acct.findall(AD_NS + "Protocol"):
        fields = {c.tag[len(AD_NS):]: c.text for c in p}
        assert set(fields) == {"Type", "Server", "Port", "DomainRequired",
                               "LoginName", "SPA", "SSL", "Encryption",
                               "AuthRequired"}
        assert fields["DomainRequired"] == "off"
        assert fields["SPA"] == "off"
        assert fields["AuthRequired"] == "on"
        assert fields["LoginName"] == "dora@example.test"
        protos.append((fields["Type"], fields["Server"], int(fields["Port"]),
                       fields["SSL"], fields["Encryption"]))
    assert protos == [
        ("IMAP", "imap.example.test", 993, "on", "SSL"),
        ("IMAP", "imap.example.test", 143, "on", "TLS"),
        ("POP3", "pop.example.test", 995, "on", "SSL"),
        ("SMTP", "smtp.example.test", 465, "on", "SSL"),
        ("SMTP", "smtp.example.test", 587, "on", "TLS"),
    ]


def test_autodiscover_refusals(st):
    conn = plain(st)
    # Outlook's capitalisation, a prefixed element and an entity
    body = ('<a:Autodiscover xmlns:a="x"><a:Request><a:EMailAddress> '
            'o&amp;neil@example.test </a:EMailAddress></a:Request>'
            '</a:Autodiscover>')
    status, _, resp = request(conn, "POST", "/Autodiscover/Autodiscover.xml",
                              body)
    assert status == 200, resp
    acct = ET.fromstring(resp).find(AD_NS + "Response").find(
        AD_NS + "Account")
    assert {p.findtext(AD_NS + "LoginName")
            for p in acct.findall(AD_NS + "Protocol")} == \
        {"o&neil@example.test"}

    def error_code(resp):
        e = ET.fromstring(resp).find(AC_NS + "Response").find(AC_NS + "Error")
        return e.findtext(AC_NS + "ErrorCode")

    for bad in ["", "<Autodiscover/>", "not xml at all",
                AD_REQUEST % ("no-domain", OUTLOOK_SCHEMA),
                AD_REQUEST % ("x@<b>.test", OUTLOOK_SCHEMA),
                AD_REQUEST % ("a@b.test&bogus;", OUTLOOK_SCHEMA)]:
        status, _, resp = request(plain(st), "POST",
                                  "/autodiscover/autodiscover.xml", bad)
        assert status == 400, (bad, resp)
        assert error_code(resp) == "600"
    status, _, resp = request(
        plain(st), "POST", "/autodiscover/autodiscover.xml",
        AD_REQUEST % ("a@example.test", "http://schemas.microsoft.com/"
                      "exchange/autodiscover/mobilesync/responseschema/2006"))
    assert status == 400 and error_code(resp) == "601"
    status, hdrs, _ = request(plain(st), "GET",
                              "/autodiscover/autodiscover.xml")
    assert status == 405 and hdrs["allow"] == "POST"


# -- the settings page --------------------------------------------------------

def test_settings_form(st):
    status, hdrs, body = request(https(st), "GET", "/settings")
    assert status == 200
    assert hdrs["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in hdrs["content-security-policy"]
    assert hdrs["x-frame-options"] == "DENY"
    # not no-referrer: under it a browser's Origin for the page's own
    # form is "null" (test_settings_page_in_chromium)
    assert hdrs["referrer-policy"] == "same-origin"
    assert hdrs["cache-control"] == "no-store"
    page = body.decode()
    assert "<title>Settings for POP or IMAP access</title>" in page
    assert '<form method="post" action="/settings">' in page
    assert 'type="password"' in page
    assert "<script" not in page
    # the form is not offered over plain HTTP
    status, _, body = request(plain(st), "GET", "/settings")
    assert status == 200
    assert b"<form" not in body and b'id="insecure"' in body


def test_settings_signed_in(st):
    user, pw = st.new_user("page")
    status, hdrs, body = sign_in(st, user, pw)
    assert status == 200, body
    page = parse_page(body)
    assert page.title == "Settings for POP or IMAP access"
    assert page.login == user
    # site 1: the site-1 internal entry, not the site-2 one
    assert page.rows == SITE1_ROWS
    assert "default-src 'none'" in hdrs["content-security-policy"]
    # the configuration profile for Apple's Mail, for this address
    assert page.apple == "/mail/apple.mobileconfig?emailaddress=" + \
        urllib.parse.quote(user, safe=""), page.apple
    import plistlib
    status, _, body = request(https(st), "GET", page.apple)
    assert status == 200, body
    acct = plistlib.loads(signed_content(st, body))["PayloadContent"][0]
    assert (acct["EmailAddress"], acct["IncomingMailServerUsername"],
            acct["EmailAccountType"]) == (user, user, "EmailTypeIMAP")
    # by login name (uid) too
    uid = user
    status, _, body = sign_in(st, uid, pw)
    assert status == 200


def test_settings_site_two_user(st):
    """The internal entries of the user's own site (from LDAP: the site of
    their mailbox server)."""
    user, pw = st.new_user("site2")
    ldap_modify(st, "dn: cn=s1b1,ou=backends,dc=example,dc=test\n"
                "changetype: modify\nreplace: porticoSite\nporticoSite: 2\n")
    try:
        status, _, body = sign_in(st, user, pw)
    finally:
        ldap_modify(st, "dn: cn=s1b1,ou=backends,dc=example,dc=test\n"
                    "changetype: modify\nreplace: porticoSite\n"
                    "porticoSite: 1\n")
    assert status == 200, body
    rows = parse_page(body).rows
    internal = [r for r in rows if r[0] == "IMAP" and r[1] == "internal"]
    assert internal == [
        ("IMAP", "internal", "imap.int.example.test", 993, "SSL/TLS"),
        ("IMAP", "internal", "imap.site2.example.test", 143, "STARTTLS")]
    external = [r for r in rows if r[0] == "IMAP" and r[1] == "external"]
    assert external[-1] == ("IMAP", "external", "imap.site2.example.test",
                            993, "SSL/TLS"), external
    # the Apple profile of the user's site, which has entries of its own
    apple = parse_page(body).apple
    assert apple == "/mail/apple.mobileconfig?emailaddress=%s&site=2" % \
        urllib.parse.quote(user, safe=""), apple
    import plistlib
    status, _, prof = request(https(st), "GET", apple)
    assert status == 200, prof
    acct = plistlib.loads(signed_content(st, prof))["PayloadContent"][0]
    assert acct["IncomingMailServerHostName"] == "imap.site2.example.test"


def test_settings_pop3_off_for_user(st):
    user, pw = st.new_user("nopop", pop3=False)
    status, _, body = sign_in(st, user, pw)
    assert status == 200
    page = parse_page(body)
    assert [r for r in page.rows if r[0] == "POP3"] == []
    assert page.notes["POP3"] == ["POP3 is not enabled for your account."]
    assert [r for r in page.rows if r[0] == "IMAP"] == SITE1_ROWS[:4]
    assert page.apple.endswith(urllib.parse.quote(user, safe=""))
    # IMAP off: the profile sets up POP3
    user, pw = st.new_user("noimap", imap=False)
    status, _, body = sign_in(st, user, pw)
    assert status == 200
    link = parse_page(body).apple
    assert link.endswith("&protocol=pop3"), link
    import plistlib
    status, _, body = request(https(st), "GET", link)
    assert status == 200, body
    assert plistlib.loads(signed_content(st, body))["PayloadContent"][0][
        "EmailAccountType"] == "EmailTypePOP"


@pytest.mark.parametrize("case", ["wrong-password", "unknown-user",
                                  "admin", "privileged-in-ldap",
                                  "disabled", "empty-password"])
def test_settings_refusals(st, case):
    user, pw = st.new_user("ref")
    expect_status, expect_msg = 403, "The mail address or the password is " \
        "wrong."
    if case == "wrong-password":
        pw = pw + "x"
    elif case == "unknown-user":
        user = "nobody-%d@example.test" % os.getpid()
    elif case == "admin":
        user = "Admin@example.test"
        expect_msg = ("Anonymous, guest and administrator accounts cannot "
                      "use POP3/IMAP4.")
    elif case == "privileged-in-ldap":
        ldap_modify(st, "dn: uid=%s,ou=people,dc=example,dc=test\n"
                    "changetype: modify\nadd: employeeType\n"
                    "employeeType: administrator\n" % user)
        expect_msg = ("Anonymous, guest and administrator accounts cannot "
                      "use POP3/IMAP4.")
    elif case == "disabled":
        user, pw = st.new_user("disabled", state="disabled")
        expect_msg = "This account is disabled."
    elif case == "empty-password":
        pw = ""
        expect_status = 400
        expect_msg = "Enter your mail address and your password."
    status, _, body = sign_in(st, user, pw)
    page = parse_page(body)
    assert status == expect_status, body
    assert page.message == expect_msg
    assert page.rows == []
    assert "imap.example.test" not in body.decode()


def test_settings_refuses_padded_refused_names(st):
    """ "admin " is "admin" to the directory, and so here: refused before
    the directory is asked, like "admin"."""
    for login in ("admin ", " admin", "Admin\t"):
        status, _, body = sign_in(st, login, "whatever")
        assert status == 403, (login, status)
        assert b"administrator accounts cannot" in body
    status, _, body = sign_in(st, "mallory\nforged", "x")
    assert status == 400


def test_request_timeout_is_for_receiving_only(st):
    """http.request_timeout (2s here) bounds the time to receive a request
    (a request begun and never finished gets 408); the answer to one
    received in time may take longer (a sign-in waiting out its brute-force
    penalty) and still comes."""
    s = socket.create_connection((st.host, st.HTTP_PORT), timeout=10)
    s.sendall(b"GET /settings HTTP/1.1\r\nHost: x\r\n")
    f = s.makefile("rb")
    assert f.readline().startswith(b"HTTP/1.1 408 ")
    s.close()
    user, pw = st.new_user("slowform")
    assert sign_in(st, user, "wrong")[0] == 403     # a 1 s penalty now
    body = urllib.parse.urlencode({"user": user, "password": pw}).encode()
    conn = https(st)
    conn.putrequest("POST", "/settings")
    conn.putheader("Content-Type", "application/x-www-form-urlencoded")
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders()
    time.sleep(1.5)                 # within the 2 s, then 1 s of penalty
    conn.send(body)
    r = conn.getresponse()
    assert r.status == 200, r.status
    r.read()


def test_http_connections_count_per_address(stack_factory):
    """limits.max_connections_per_address holds for HTTP as for mail: one
    address cannot take every HTTP connection (and /health with them);
    others are served, and a place comes back when a connection ends."""
    st2 = stack_factory(name="httpaddr", settings=[
        "limits.max_connections_per_address=3"])

    def connect(src):
        return socket.create_connection((st2.host, st2.HTTP_PORT),
                                        timeout=10, source_address=(src, 0))
    held = [connect("127.0.0.31") for _ in range(3)]
    for h in held:                  # each of them is being served
        h.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert h.recv(100).startswith(b"HTTP/1.1 ")
    extra = connect("127.0.0.31")
    assert extra.makefile("rb").readline().startswith(
        b"HTTP/1.1 503 "), "a fourth connection was served"
    extra.close()
    other = connect("127.0.0.32")
    other.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert other.recv(100).startswith(b"HTTP/1.1 200 ")
    other.close()
    held.pop().close()
    def served():
        s = connect("127.0.0.31")
        try:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            return s.recv(100).startswith(b"HTTP/1.1 200 ")
        except OSError:
            return False
        finally:
            s.close()
    wait_for(served, what="the place to come back")
    for h in held:
        h.close()


def test_settings_sign_in_spraying_is_slowed(stack_factory):
    """The settings page's sign-in shares the mail logins' penalty per
    client address (limits.auth_address_failures, 3 here): one password
    tried on many names from one address makes every later sign-in from
    it wait, the right password too; another address does not."""
    st2 = stack_factory(name="httpspray", settings=[
        "limits.auth_address_failures=3", "limits.auth_penalty=1s"])
    user, pw = st2.new_user("sprayed")

    def from_(source):
        return http.client.HTTPSConnection(
            st2.host, st2.HTTPS_PORT, context=st2.ssl_context(), timeout=10,
            source_address=(source, 0))

    src = "127.0.0.44"
    for i in range(4):
        status = sign_in(st2, "nobody%d@example.test" % i, "Autumn-2025",
                         conn=from_(src))[0]
        assert status == 403, status
    assert sign_in(st2, user, pw, conn=from_(src))[0] == 200
    log = st2.log("s1f1")
    assert ("http settings client=%s:" % src) in log
    held = [l for l in log.splitlines() if "user=%s auth address penalty "
            "delay_ms=1000 address_failures=4" % user in l]
    assert len(held) == 1, held
    assert "client=127.0.0.45" not in log
    assert sign_in(st2, user, pw, conn=from_("127.0.0.45"))[0] == 200
    assert not [l for l in st2.log("s1f1").splitlines()
                if "client=127.0.0.45:" in l and "penalty" in l]


def test_settings_refused_over_plain_http(st):
    user, pw = st.new_user("plain")
    status, _, body = sign_in(st, user, pw, conn=plain(st))
    assert status == 403
    page = parse_page(body)
    assert page.message == ("Your password was not checked: it must not "
                            "travel unencrypted.")
    assert page.rows == []
    # the password never reached the directory
    assert "user=%s " % user not in st.log("s1f1")


CROSS_SITE_MESSAGE = ("Your password was not checked: the form was sent "
                      "from another site.  Sign in on this page.")


def cross_site_headers(st, case):
    own = "%s:%d" % (st.host, st.HTTPS_PORT)
    return {
        "other-site": {"Origin": "https://evil.example"},
        "other-site-same-host-name": {"Origin": "https://%s.evil.example"
                                      % st.host},
        "null": {"Origin": "null"},     # sandboxed frames, local files
        "null-cross-site": {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
        "null-same-site": {"Origin": "null", "Sec-Fetch-Site": "same-site"},
        "empty": {"Origin": ""},
        "http-scheme": {"Origin": "http://" + own},
        "other-port": {"Origin": "https://%s:%d" % (st.host, st.HTTP_PORT)},
        "with-path": {"Origin": "https://%s/settings" % own},
        "sec-fetch-site": {"Sec-Fetch-Site": "cross-site"},
        "sec-fetch-site-and-own-origin": {"Sec-Fetch-Site": "cross-site",
                                          "Origin": "https://" + own},
    }[case]


@pytest.mark.parametrize("case", [
    "other-site", "other-site-same-host-name", "null", "null-cross-site",
    "null-same-site", "empty",
    "http-scheme", "other-port", "with-path", "sec-fetch-site",
    "sec-fetch-site-and-own-origin"])
def test_settings_cross_site_post_refused(st, case):
    """A form posted from another origin (a hostile page making a visitor's
    browser post wrong passwords for someone) gets 403 before its password
    is looked at: nothing reaches the directory and no brute-force penalty
    is recorded for the (address, login) pair."""
    user, pw = st.new_user("xsite")
    headers = cross_site_headers(st, case)
    for password in (pw + "-wrong", pw + "-wrong", pw):
        status, hdrs, body = sign_in(st, user, password, headers=headers)
        assert status == 403, (status, body[:300])
        page = parse_page(body)
        assert page.message == CROSS_SITE_MESSAGE
        assert page.rows == []
        assert "default-src 'none'" in hdrs["content-security-policy"]
    wait_for(lambda: "refused: form from another site" in st.log("s1f1"),
             what="the refusal logged")
    assert "user=%s " % user not in st.log("s1f1")
    # the pair has no penalty: the right password, sent from the page
    # itself, is checked at once
    status, _, body = sign_in(st, user, pw)
    assert status == 200, body[:300]
    assert parse_page(body).login == user
    log = st.log("s1f1")
    assert "user=%s authenticated" % user in log
    assert "user=%s auth penalty" % user not in log


def test_settings_origin_header_forms(st):
    """An empty Origin followed by more headers, and a second Origin, are
    Origins that are not the page's own."""
    user, pw = st.new_user("xsiteraw")
    body = urllib.parse.urlencode({"user": user, "password": pw}).encode()
    own = b"https://%s:%d" % (st.host.encode(), st.HTTPS_PORT)
    for origins in (b"Origin:\r\n", b"Origin: " + own + b"\r\nOrigin: " +
                    own + b"\r\n"):
        resp = raw_http(st, b"POST /settings HTTP/1.1\r\nHost: %s:%d\r\n"
                        % (st.host.encode(), st.HTTPS_PORT) + origins +
                        b"Content-Type: application/x-www-form-urlencoded"
                        b"\r\nContent-Length: %d\r\nConnection: close\r\n"
                        b"\r\n" % len(body) + body, tls=True)
        assert status_of(resp) == 403, resp[:300]
        assert CROSS_SITE_MESSAGE.encode() in resp
    assert "user=%s " % user not in st.log("s1f1")


def test_settings_same_origin_post_served(st):
    """The page's own origin (default port written or not, any case), or
    no Origin at all (older clients, scripts), is served."""
    user, pw = st.new_user("sameorigin")
    own = "%s:%d" % (st.host, st.HTTPS_PORT)
    for headers in ({"Origin": "https://" + own},
                    {"Origin": "HTTPS://" + own.upper()},
                    {"Origin": "https://" + own,
                     "Sec-Fetch-Site": "same-origin"},
                    {"Sec-Fetch-Site": "none"},     # typed by the user
                    # an origin the browser withholds, its own form
                    {"Origin": "null", "Sec-Fetch-Site": "same-origin"},
                    {"Origin": "https://mail.example.test",
                     "Host": "mail.example.test"},
                    {"Origin": "https://mail.example.test",
                     "Host": "mail.example.test:443"},
                    {}):
        status, _, body = sign_in(st, user, pw, headers=headers)
        assert status == 200, (headers, body[:300])
        assert parse_page(body).login == user


@pytest.fixture(scope="module")
def st_behind_proxy(stack_factory):
    """A frontend behind a TLS-terminating proxy: sign-in over plain HTTP
    allowed, no Strict-Transport-Security of its own."""
    return stack_factory(name="httpproxy", settings=[
        "http.plaintext_login=yes", "http.hsts_max_age=0"])


def test_settings_behind_tls_proxy_origin(st_behind_proxy):
    """With http.plaintext_login, the https:// origin of the Host is the
    page's own too (the browser saw the proxy's https:// page); another
    site is still refused."""
    st2 = st_behind_proxy
    user, pw = st2.new_user("proxied")
    for origin, expect in (("https://mail.example.test", 200),
                           ("http://mail.example.test", 200),
                           ("https://mail.example.test:8443", 403),
                           ("https://evil.example", 403)):
        status, _, body = sign_in(st2, user, pw, conn=plain(st2), headers={
            "Host": "mail.example.test", "Origin": origin})
        assert status == expect, (origin, body[:300])
        if expect == 403:
            assert parse_page(body).message == CROSS_SITE_MESSAGE


HSTS = "max-age=%d" % (30 * 86400)


def test_hsts_on_tls_listener_only(st):
    """Every answer of http.tls_listen carries Strict-Transport-Security
    with http.hsts_max_age (30d here), pages, XML, errors and refusals by
    the parser alike; no answer of the plain listener does."""
    user, pw = st.new_user("hsts")
    for method, path in (("GET", "/settings"),
                         ("GET", "/mail/config-v1.1.xml"),
                         ("GET", "/nowhere"), ("GET", "/health"),
                         ("DELETE", "/settings")):
        _, hdrs, _ = request(https(st), method, path)
        assert hdrs.get("strict-transport-security") == HSTS, (path, hdrs)
        _, hdrs, _ = request(plain(st), method, path)
        assert "strict-transport-security" not in hdrs, (path, hdrs)
    _, hdrs, _ = sign_in(st, user, pw)
    assert hdrs.get("strict-transport-security") == HSTS
    resp = raw_http(st, b"GARBAGE\r\n\r\n", tls=True)
    assert status_of(resp) == 400
    assert b"\r\nStrict-Transport-Security: " + HSTS.encode() + b"\r\n" \
        in resp
    resp = raw_http(st, b"GARBAGE\r\n\r\n")
    assert b"Strict-Transport-Security" not in resp


def test_hsts_zero_sends_none(st_behind_proxy):
    st2 = st_behind_proxy
    for conn in (https(st2), plain(st2)):
        status, hdrs, _ = request(conn, "GET", "/settings")
        assert status == 200
        assert "strict-transport-security" not in hdrs, hdrs


def test_settings_escapes_what_it_echoes(st):
    user = '"><script>alert(1)</script><b x="@example.test'
    status, _, body = sign_in(st, user, "whatever")
    assert status == 403
    text = body.decode()
    assert "<script>" not in text and "<b x=" not in text
    assert ('value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;b '
            'x=&quot;@example.test"') in text


def test_settings_form_errors(st):
    conn = https(st)
    status, _, body = request(conn, "POST", "/settings", "user=a&password=b",
                              {"Content-Type": "text/plain"})
    assert status == 415
    status, _, body = request(https(st), "POST", "/settings",
                              "user=%ZZ&password=b",
                              {"Content-Type":
                               "application/x-www-form-urlencoded"})
    assert status == 400
    assert parse_page(body).message == "The form could not be read."
    status, hdrs, _ = request(https(st), "DELETE", "/settings")
    assert status == 405


CHROMIUM = shutil.which("chromium")


def chromium(args, tmp_path):
    # Each run of the browser gets a profile directory of its own: a
    # Chromium started on the profile of one that has not quite exited
    # hands its command line to that one and exits without doing the
    # work (no --dump-dom output), or waits on it.  What is left of that
    # (a run that still produces nothing, or hangs) is asked again, twice
    # at most; what the browser does produce is checked by the caller.
    out = ""
    for _ in range(3):
        profile = tempfile.mkdtemp(prefix="profile-", dir=tmp_path)
        try:
            proc = subprocess.run(
                [CHROMIUM, "--headless=new", "--no-sandbox",
                 "--disable-gpu", "--ignore-certificate-errors",
                 "--no-first-run", "--user-data-dir=%s" % profile,
                 "--virtual-time-budget=10000"] + args,
                capture_output=True, timeout=60)
        except subprocess.TimeoutExpired:
            continue
        assert proc.returncode == 0, proc.stderr[-2000:]
        out = proc.stdout.decode(errors="replace")
        if "--dump-dom" not in args or out.strip():
            return out
    return out


class DevTools:
    """Chromium driven through the DevTools protocol on a pipe
    (--remote-debugging-pipe: JSON messages ending in NUL, the browser
    reading fd 3 and writing fd 4), for what a page without script cannot
    do by itself in a headless browser: fill in and submit its form."""

    def __init__(self, tmp_path):
        to_r, self.to_w = os.pipe()
        self.from_r, from_w = os.pipe()

        def child_fds():
            # out of the way of 3 and 4 first, whatever their numbers
            r, w = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_r,
                                                                  from_w))
            os.dup2(r, 3)
            os.dup2(w, 4)
        profile = tempfile.mkdtemp(prefix="profile-", dir=tmp_path)
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
             "--ignore-certificate-errors", "--no-first-run",
             "--user-data-dir=%s" % profile, "--window-size=1000,1400",
             "--remote-debugging-pipe", "about:blank"],
            preexec_fn=child_fds, pass_fds=(3, 4),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_r)
        os.close(from_w)
        self.buf, self.n, self.events = b"", 0, []
        targets = self.call("Target.getTargets")["targetInfos"]
        page = [t for t in targets if t["type"] == "page"][0]
        self.session = self.call("Target.attachToTarget",
                                 targetId=page["targetId"],
                                 flatten=True)["sessionId"]
        self.call("Page.enable", self.session)

    def _message(self, deadline):
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.from_r], [], [],
                                              left)[0]:
                raise AssertionError("chromium: no answer in time")
            data = os.read(self.from_r, 65536)
            if not data:
                raise AssertionError("chromium closed its pipe")
            self.buf += data
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, session=None, timeout=60, **params):
        self.n += 1
        msg = {"id": self.n, "method": method, "params": params}
        if session is not None:
            msg["sessionId"] = session
        os.write(self.to_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            m = self._message(deadline)
            if m.get("id") == self.n:
                assert "error" not in m, (method, m["error"])
                return m["result"]
            self.events.append(m)

    def page(self, method, **params):
        return self.call(method, self.session, **params)

    def loaded(self, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e.get("method") == "Page.loadEventFired":
                    del self.events[i]
                    return
            self.events.append(self._message(deadline))

    def open(self, url):
        self.events.clear()
        self.page("Page.navigate", url=url)
        self.loaded()

    def submit(self, fields, checks=()):
        """Types fields (id -> value) into the page's form that holds
        them, ticks the checkboxes of CHECKS (ids) and sends it; returns
        the page that comes back."""
        script = "".join("document.getElementById(%s).value = %s;" %
                         (json.dumps(k), json.dumps(v))
                         for k, v in fields.items())
        script += "".join("document.getElementById(%s).checked = true;" %
                          json.dumps(k) for k in checks)
        self.events.clear()
        self.page("Runtime.evaluate",
                  expression=script + "document.getElementById(%s)"
                  ".form.submit();" % json.dumps(next(iter(fields))))
        self.loaded()
        return self.page("Runtime.evaluate",
                         expression="document.documentElement.outerHTML",
                         returnByValue=True)["result"]["value"]

    def screenshot(self):
        return base64.b64decode(self.page("Page.captureScreenshot",
                                          format="png")["data"])

    def close(self):
        try:
            self.call("Browser.close", timeout=10)
        except (AssertionError, OSError):
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self.to_w)
        os.close(self.from_r)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed "
                    "(scripts/deps.sh)")
def test_settings_page_in_chromium(st, tmp_path):
    user, pw = st.new_user("browser")
    url = "https://%s:%d/settings" % (st.host, st.HTTPS_PORT)
    browser = DevTools(tmp_path)
    try:
        # A user signs in on the page: the browser sends the page's own
        # Origin with the form.
        browser.open(url)
        dom = browser.submit({"user": user, "password": pw})
        page = parse_page(dom)
        assert page.title == "Settings for POP or IMAP access", dom[:2000]
        assert page.login == user
        assert page.rows == SITE1_ROWS
        shot = tmp_path / "settings.png"
        shot.write_bytes(browser.screenshot())
        data = shot.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10000
        # The automatic reply, set with the form below the servers: its
        # checkbox, text area and date field as the browser sends them.
        last = (datetime.datetime.now(datetime.timezone.utc).date() +
                datetime.timedelta(days=3)).isoformat()
        dom = browser.submit({"ar-subject": "Away until Friday",
                              "ar-text": "Back soon.\nRegards",
                              "ar-end": last, "ar-password": pw},
                             checks=("ar-on",))
        assert 'id="auto-reply-message">Your automatic reply is saved.' \
            in dom, dom[-3000:]
        assert 'data-state="on"' in dom, dom[-3000:]
        assert 'id="ar-end" name="end" type="date" value="%s"' % last \
            in dom, dom[-3000:]
        (tmp_path / "auto-reply.png").write_bytes(browser.screenshot())
        # A wrong password shows the refusal in the browser too.
        browser.open(url)
        dom = browser.submit({"user": user, "password": pw + "-wrong"})
        assert parse_page(dom).message == \
            "The mail address or the password is wrong."
    finally:
        browser.close()
    # A local page that posts the form from elsewhere (Origin: null,
    # Sec-Fetch-Site: cross-site) is refused, its password not checked.
    other, opw = st.new_user("browser-xsite")
    post = tmp_path / "sign-in.html"
    post.write_text(
        '<!DOCTYPE html><html><body onload="document.forms[0].submit()">'
        '<form method="post" action="%s">'
        '<input name="user" value="%s"><input name="password" value="%s">'
        '</form></body></html>' % (url, other, opw))
    dom = chromium(["--dump-dom", post.as_uri()], tmp_path)
    assert parse_page(dom).message == CROSS_SITE_MESSAGE, dom[:2000]
    assert "user=%s " % other not in st.log("s1f1")


# -- HTTP bounds ----------------------------------------------------------------

def raw_http(st, data, tls=False, read_all=True):
    s = socket.create_connection((st.host, st.HTTPS_PORT if tls
                                  else st.HTTP_PORT), timeout=10)
    if tls:
        s = st.ssl_context().wrap_socket(s, server_hostname=st.host)
    s.sendall(data)
    chunks = []
    while True:
        try:
            b = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not b:
            break
        chunks.append(b)
        if not read_all:
            break
    s.close()
    return b"".join(chunks)


def status_of(resp):
    return int(resp.split(b" ", 2)[1])


def test_oversized_headers_431(st):
    req = (b"GET /settings HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 3000 +
           b"\r\n\r\n")
    resp = raw_http(st, req)
    assert status_of(resp) == 431, resp[:200]
    assert b"Connection: close" in resp
    # a long URL counts too
    resp = raw_http(st, b"GET /" + b"a" * 2100 + b" HTTP/1.1\r\n\r\n")
    assert status_of(resp) == 431


def test_oversized_body_413(st):
    # declared too large: refused before the body is sent
    resp = raw_http(st, b"POST /autodiscover/autodiscover.xml HTTP/1.1\r\n"
                    b"Host: x\r\nContent-Length: 5000\r\n\r\n")
    assert status_of(resp) == 413, resp[:200]
    # chunked, growing past the limit
    chunk = b"a" * 3000
    resp = raw_http(st, b"POST /autodiscover/autodiscover.xml HTTP/1.1\r\n"
                    b"Host: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
                    (b"%x\r\n%s\r\n" % (len(chunk), chunk)) * 2 + b"0\r\n\r\n")
    assert status_of(resp) == 413
    # Expect: 100-continue with a body too large gets 413 at once
    resp = raw_http(st, b"POST /settings HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Length: 99999\r\nExpect: 100-continue\r\n\r\n",
                    tls=True)
    assert status_of(resp) == 413


@pytest.mark.parametrize("junk,status", [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost x\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n\r\n", 400),                     # no Host
    (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    (b"POST /settings HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
     400),
    (b"POST /settings HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
     b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    (b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET http://u@evil.example/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400),  # RFC 9112 3.2
    (b"GET / HTTP/1.1\r\nHost: a b/c@d\r\n\r\n", 400),
    (b"POST /settings HTTP/1.1\r\nHost: x\r\n"
     b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
    (b"GET /" + b"a" * 1100 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
])
def test_bad_requests_400_server_keeps_serving(st, junk, status):
    resp = raw_http(st, junk)
    assert status_of(resp) == status, resp[:200]
    assert b"Connection: close" in resp
    got, _, _ = request(plain(st), "GET", "/mail/config-v1.1.xml")
    assert got == 200


def test_absolute_form_and_http10_expect(st):
    """RFC 9112 3.2.2: a request target in absolute form is served as its
    path, its authority taken for the Host; RFC 9110 10.1.1: an HTTP/1.0
    request's Expect: 100-continue is ignored."""
    resp = raw_http(st, b"GET http://mail.example.test/mail/config-v1.1.xml"
                    b"?emailaddress=a%40example.test HTTP/1.1\r\n"
                    b"Host: other\r\nConnection: close\r\n\r\n")
    assert status_of(resp) == 200, resp[:200]
    assert b"<clientConfig" in resp
    resp = raw_http(st, b"POST /autodiscover/autodiscover.xml HTTP/1.0\r\n"
                    b"Content-Length: 5\r\nExpect: 100-continue\r\n\r\n"
                    b"<x/>\n")
    assert not resp.startswith(b"HTTP/1.1 100"), resp[:100]


def test_upgrade_ignored(st):
    resp = raw_http(st, b"GET /mail/config-v1.1.xml HTTP/1.1\r\nHost: x\r\n"
                    b"Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
                    b"\x81\x85garbage")
    assert status_of(resp) == 200
    assert b"Connection: close" in resp and resp.count(b"HTTP/1.1") == 1


def test_keep_alive_and_pipelining(st):
    conn = plain(st)
    for _ in range(3):
        status, hdrs, _ = request(conn, "GET", "/mail/config-v1.1.xml")
        assert status == 200 and hdrs["connection"] == "keep-alive"
    # two pipelined requests, answered in order on one connection
    req = (b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n"
           b"GET /mail/config-v1.1.xml HTTP/1.1\r\nHost: x\r\n"
           b"Connection: close\r\n\r\n")
    resp = raw_http(st, req)
    assert resp.startswith(b"HTTP/1.1 404 ")
    assert resp.count(b"HTTP/1.1 200 OK") == 1
    assert resp.index(b"HTTP/1.1 404") < resp.index(b"HTTP/1.1 200")


def test_head_has_no_body(st):
    conn = plain(st)
    conn.request("HEAD", "/mail/config-v1.1.xml")
    r = conn.getresponse()
    assert r.status == 200 and int(r.getheader("Content-Length")) > 100
    assert r.read() == b""


# -- DNS SRV records ------------------------------------------------------------

def test_dns_srv(st):
    admin = Path(os.environ.get("PORTICO_BUILD", REPO / "build")) / \
        "portico-admin"
    out = subprocess.run(
        [str(admin), "-c", str(st.dir / "s1f1" / "frontend.ini"), "dns-srv",
         "example.test", "--ttl", "600"],
        check=True, capture_output=True, timeout=30).stdout.decode()
    assert [l.split() for l in out.splitlines()] == [
        ["_imaps._tcp.example.test.", "600", "IN", "SRV", "0", "1", "993",
         "imap.example.test."],
        ["_imap._tcp.example.test.", "600", "IN", "SRV", "10", "1", "143",
         "imap.example.test."],
        ["_pop3s._tcp.example.test.", "600", "IN", "SRV", "0", "1", "995",
         "pop.example.test."],
        ["_pop3._tcp.example.test.", "600", "IN", "SRV", "0", "0", "0", "."],
        ["_submissions._tcp.example.test.", "600", "IN", "SRV", "0", "1",
         "465", "smtp.example.test."],
        ["_submission._tcp.example.test.", "600", "IN", "SRV", "10", "1",
         "587", "smtp.example.test."],
    ]
    bad = subprocess.run(
        [str(admin), "-c", str(st.dir / "s1f1" / "frontend.ini"), "dns-srv",
         "exa mple"], capture_output=True, timeout=30)
    assert bad.returncode == 2
