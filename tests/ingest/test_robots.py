"""robots.txt (RFC 9309), sitemaps, URL normalization and link extraction: the rules alone,
and the crawler obeying them against local sites."""

from __future__ import annotations

import pytest

from synthq.tasks.ingest.robots import extract_links, normalize_url, parse_sitemap, rules_from_text
from tests.ingest.sites import UA, assert_paced, cfg, html_tree, run, urls


def test_sitemaps_from_robots_and_the_default_location(site_at):
    site = site_at("127.0.0.2")
    site.routes["/robots.txt"] = (200, {}, f"User-agent: *\nAllow: /\nSitemap: {site.url}/index.xml\n".encode())
    site.routes["/index.xml"] = (200, {"Content-Type": "application/xml"}, (
        '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<sitemap><loc>{site.url}/one.xml</loc></sitemap></sitemapindex>").encode())
    site.routes["/one.xml"] = (200, {"Content-Type": "text/xml"}, (
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<url><loc>{site.url}/a</loc></url><url><loc>{site.url}/b</loc></url>"
        "<url><loc>http://127.0.0.9/elsewhere</loc></url></urlset>").encode())
    site.routes["/sitemap.xml"] = (200, {"Content-Type": "application/xml"}, (
        f"<urlset><url><loc> {site.url}/c </loc></url></urlset>").encode())
    for path in ("/", "/a", "/b", "/c"):
        site.page(path)
    pages, rejected, stats = run([site.url + "/"], cfg(sitemaps=True))
    assert urls(pages) == {site.url + p for p in ("/", "/a", "/b", "/c")} and not rejected
    assert stats["sitemaps_fetched"] == 3 and stats["links_offsite"] == 1


# -- robots.txt


def test_robots_disallow_and_crawl_delay(static_site_at):
    routes = html_tree({"/": ["/secret/plans", "/a", "/b"], "/a": [], "/b": []})
    routes["/robots.txt"] = (200, "text/plain", "User-agent: *\nDisallow: /\n\n"
                             "User-agent: synthq-test\nDisallow: /secret\nCrawl-delay: 0.3\n")
    url, arrivals = static_site_at("127.0.0.2", routes)
    pages, rejected, stats = run([url + "/"], cfg(max_depth=1))
    log = arrivals()
    assert urls(pages) == {url + p for p in ("/", "/a", "/b")}
    assert rejected[url + "/secret/plans"]["reason"] == "robots_disallowed"
    assert [p for _, p in log].count("/robots.txt") == 1 and "/secret/plans" not in [p for _, p in log]
    assert_paced([t for t, _ in log], 4, 0.3)


def test_robots_500_makes_the_host_unavailable(site_at):
    site = site_at("127.0.0.2")
    site.routes["/robots.txt"] = (500, {}, b"oops")
    site.page("/")
    pages, rejected, _ = run([site.url + "/", site.url + "/x"], cfg(retries=1))
    assert not pages and {r["reason"] for r in rejected.values()} == {"robots_unavailable"}
    assert "HTTP 500" in rejected[site.url + "/"]["detail"]
    assert site.paths() == ["/robots.txt", "/robots.txt"]  # one retry, then never a page


@pytest.mark.parametrize("status,allowed", [(404, True), (403, True), (429, False), (503, False)])
def test_robots_status_decides(site_at, status, allowed):
    site = site_at("127.0.0.2")
    site.routes["/robots.txt"] = (status, {}, b"")
    site.page("/")
    pages, rejected, _ = run([site.url + "/"], cfg(retries=0))
    assert bool(pages) is allowed and (allowed or rejected[site.url + "/"]["reason"] == "robots_unavailable")


ROBOTS = """User-agent: *
Disallow: /
Crawl-delay: 5

User-agent: otherbot
User-agent: SynthQ-Test/2.0
Allow: /
Disallow: /private/   # longest match wins, whatever the order
Allow: /private/press-kit
Disallow: /*.pdf$
Disallow: /search?*session=
Disallow: /caf%C3%A9
Crawl-delay: 0.5
Sitemap: https://example.com/sitemap-a.xml
"""


@pytest.mark.parametrize("path,allowed", [
    ("/page", True), ("/private/x", False), ("/private/press-kit/2026", True), ("/paper.pdf", False),
    ("/paper.pdf?download=1", True), ("/search?q=a&session=9", False), ("/search?q=a", True),
    ("/café/menu", False), ("/robots.txt", True),
])
def test_robots_rules_rfc_9309_matching(path, allowed):
    rules = rules_from_text(ROBOTS, UA)
    assert rules.allows("https://example.com" + path) is allowed
    assert rules.delay == 0.5 and rules.sitemaps == ["https://example.com/sitemap-a.xml"]


def test_robots_rules_fall_back_to_the_star_group():
    rules = rules_from_text(ROBOTS, "somebot/1.0")
    assert not rules.allows("https://example.com/page") and rules.delay == 5
    assert rules_from_text("", UA).allows("https://example.com/x")
    assert rules_from_text("User-agent: *\nDisallow:\n", UA).allows("https://example.com/x")


# RFC 9309 edge cases: (robots.txt, path, allowed for synthq-test)
RFC_CASES = [
    ("User-agent: *\nDisallow: /*/private\n", "/a/b/private/x", False),  # '*' spans any characters, '/' too
    ("User-agent: *\nDisallow: /fish*\n", "/fish.html", False),  # a trailing '*' changes nothing
    ("User-agent: *\nDisallow: /fish\n", "/Fish.html", True),  # paths are case-sensitive
    ("User-agent: *\nDisallow: /*.php$\n", "/index.php", False),  # '$' anchors the end
    ("User-agent: *\nDisallow: /*.php$\n", "/index.php?lang=en", True),
    ("User-agent: *\nDisallow: /*.php$\n", "/index.php5", True),
    ("User-agent: *\nDisallow: /folder/\nAllow: /folder/page\n", "/folder/page.html", True),  # longest wins
    ("User-agent: *\nAllow: /folder/\nDisallow: /folder/page\n", "/folder/page.html", False),
    ("User-agent: *\nAllow: /page\nDisallow: /page\n", "/page", True),  # a tie: Allow wins
    ("User-agent: *\nDisallow: /page\nAllow: /page\n", "/page", True),  # whatever the order
    ("User-agent: *\nDisallow: /%7Ejoe/\n", "/~joe/index.html", False),  # %7E is '~' (unreserved): decoded
    ("User-agent: *\nDisallow: /~joe/\n", "/%7Ejoe/index.html", False),
    ("User-agent: *\nDisallow: /a%3cd\n", "/a%3Cd", False),  # percent-encodings compare case-insensitively
    ("User-agent: *\nDisallow:\n", "/anything", True),  # an empty Disallow allows all
    ("Disallow: /\nUser-agent: *\nAllow: /\n", "/x", True),  # rules before any user-agent are ignored
    ("User-agent: *\r\nDisallow: /crlf\r\n", "/crlf/x", False),  # CRLF line endings
    ("\ufeffUser-agent: *\nDisallow: /bom\n", "/bom", False),  # a byte-order mark at the start
    ("user-AGENT: *\ndisALLOW: /case\n", "/case", False),  # field names are case-insensitive
    ("User-agent: *\nDisallow: /\n\nUser-agent: SYNTHQ-TEST\nAllow: /\n", "/x", True),  # agent names too
    ("User-agent: *\nDisallow: /\n\nUser-agent: synthq-test\nUser-agent: otherbot\nAllow: /ok\n", "/ok", True),
    ("User-agent: *\nDisallow: /\n\nUser-agent: otherbot\nAllow: /\n", "/x", False),  # another's group: '*'
    ("User-agent: synthq-test\nDisallow: /one\n\nUser-agent: otherbot\nAllow: /\n\n"
     "User-agent: synthq-test\nDisallow: /two\n", "/two", False),  # the agent's groups are merged
    ("User-agent: synthq-test\nDisallow: /one\n\nUser-agent: synthq-test\nDisallow: /two\n", "/one", False),
    ("User-agent: *\nDisallow: /private # not for you\n", "/private", False),  # comments end a line
]


@pytest.mark.parametrize("text,path,allowed", RFC_CASES)
def test_robots_rfc_9309_edge_cases(text, path, allowed):
    assert rules_from_text(text, UA).allows("https://example.com" + path) is allowed


def test_robots_crawl_delay_and_sitemap_lines():
    text = ("Sitemap: https://example.com/before-any-group.xml\n"
            "User-agent: *\nCrawl-delay: 10\n\n"
            "User-agent: synthq-test\nCrawl-delay: 1.5\nDisallow: /x\n"
            "Sitemap: https://example.com/inside-a-group.xml\n\n"
            "User-agent: otherbot\nCrawl-delay: soon\n")
    rules = rules_from_text(text, UA)
    assert rules.delay == 1.5  # the agent's own group, fractional seconds
    assert rules.sitemaps == ["https://example.com/before-any-group.xml", "https://example.com/inside-a-group.xml"]
    assert rules_from_text(text, "someone/1.0").delay == 10  # the '*' group's
    assert rules_from_text(text, "otherbot/1.0").delay is None  # not a number: no delay
    assert rules_from_text("User-agent: *\nDisallow: /\n", UA).delay is None


# -- URLs, links and sitemaps


@pytest.mark.parametrize("raw,normal", [
    ("HTTP://Example.COM", "http://example.com/"),
    ("https://example.com:443/a?b=1#frag", "https://example.com/a?b=1"),
    ("http://user:pw@example.com:8080/x", "http://example.com:8080/x"),
    ("http://[::1]:80/", "http://[::1]/"),
    ("http://bücher.example/", "http://xn--bcher-kva.example/"),
])
def test_normalize_url(raw, normal):
    assert normalize_url(raw) == normal


@pytest.mark.parametrize("raw", ["ftp://example.com/", "mailto:a@b.c", "http:///path", "http://x:99999/",
                                 "javascript:void(0)", "http://example.com/" + "a" * 5000])
def test_normalize_url_refuses(raw):
    with pytest.raises(ValueError):
        normalize_url(raw)


def test_links_resolved_against_base_without_nofollow():
    html = (b'<html><head><base href="/docs/"></head><body><a href="intro">i</a><a href="/x#y">x</a>'
            b'<a rel="nofollow" href="/ads">ad</a><area href="map"><a href="mailto:a@b.c">m</a><a>no href</a>')
    assert extract_links(html, "http://example.com/start") == [
        "http://example.com/docs/intro", "http://example.com/x", "http://example.com/docs/map"]
    assert extract_links(b'<meta name="robots" content="noindex, nofollow"><a href="/a">', "http://e.com/") == []
    assert extract_links(b"", "http://e.com/") == []
    assert extract_links(b"<p>caf\xe9 <a href='/q'>unclosed <div <b", "http://e.com/") == ["http://e.com/q"]


def test_sitemap_formats():
    index = b'<sitemapindex xmlns="x"><sitemap><loc>https://e.com/s1.xml</loc></sitemap></sitemapindex>'
    assert parse_sitemap(index) == ([], ["https://e.com/s1.xml"])
    assert parse_sitemap(b"<urlset><url><loc>https://e.com/a</loc></url></urlset>") == (["https://e.com/a"], [])
    assert parse_sitemap(b"https://e.com/a\nnot a url\nhttps://e.com/b\n") == (["https://e.com/a", "https://e.com/b"], [])
    assert parse_sitemap(b"<<<not xml") == ([], [])
