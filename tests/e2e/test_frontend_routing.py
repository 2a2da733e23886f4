"""Cross-site routing: a two-site stack (one backend and one frontend per
site); users of each site log in through the frontends of both sites and
read their own mailbox, which lives on their site's backend."""

import pytest

pytestmark = pytest.mark.daemons


@pytest.fixture(scope="module")
def st(stack_factory):
    return stack_factory(name="sites", sites=2)


def message(site):
    return (b"From: a@example.test\r\nSubject: lives in site %d\r\n\r\n"
            b"Hello from site %d.\r\n" % (site, site))


def test_users_of_both_sites_through_both_frontends(st):
    users = {}
    for home in (1, 2):
        users[home] = st.new_user("site%d" % home, site=home)
        st.import_message(users[home][0], message(home))
    for home, (user, pw) in users.items():
        for via in (1, 2):
            c = st.imap(user, pw, site=via)
            typ, data = c.select("INBOX", readonly=True)
            assert typ == "OK" and data == [b"1"], (home, via, data)
            typ, data = c.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            assert b"lives in site %d" % home in data[0][1], (home, via)
            c.logout()
            p = st.pop3(user, pw, site=via)
            count, size = p.stat()
            assert count == 1
            assert b"Hello from site %d." % home in b"\n".join(
                p.retr(1)[1])
            p.quit()
    # Each frontend linked straight to the other site's backend.
    assert "link backend=s2b1 address=" in st.log("s1f1")
    assert "link backend=s1b1 address=" in st.log("s2f1")
