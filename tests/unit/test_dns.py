"""DNS messages of the user networks' resolver (pure)."""

from __future__ import annotations

from rootless.network import dns


def test_query_round_trip() -> None:
    query = dns.build_query(0x1234, "Web.")
    q = dns.parse_query(query)
    assert q is not None
    assert (q.id, q.name, q.qtype, q.qclass, q.end) == (0x1234, "web", dns.TYPE_A, 1, len(query))


def test_answer_has_the_question_and_a_records() -> None:
    query = dns.build_query(7, "db")
    q = dns.parse_query(query)
    assert q is not None
    answer = dns.reply(query, q, ["10.89.0.2", "10.89.0.3"])
    assert answer[:2] == query[:2]
    assert dns.parse_a_answers(answer) == (dns.NOERROR, ["10.89.0.2", "10.89.0.3"])
    assert answer[12 : q.end] == query[12 : q.end]


def test_error_replies() -> None:
    query = dns.build_query(9, "example.com", dns.TYPE_AAAA)
    q = dns.parse_query(query)
    assert q is not None
    assert dns.parse_a_answers(dns.reply(query, q, rcode=dns.SERVFAIL)) == (dns.SERVFAIL, [])


def test_garbage_and_replies_are_not_queries() -> None:
    assert dns.parse_query(b"") is None
    assert dns.parse_query(b"\0" * 11) is None
    query = dns.build_query(1, "x")
    q = dns.parse_query(query)
    assert q is not None
    assert dns.parse_query(dns.reply(query, q)) is None  # QR set
    assert dns.parse_query(query[:-3]) is None  # truncated question
