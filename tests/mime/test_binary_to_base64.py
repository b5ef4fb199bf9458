"""binary_to_base64: only leaf bodies holding NUL change, every other byte stays."""

import base64
import email

from geomail.mime.binary_to_base64 import binary_to_base64


def b64(data):
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def test_without_nul_in_a_body_nothing_changes():
    for message in (b"Subject: a\r\n\r\nplain\xff\r\n",
                    b"Subject: a\x00b\r\n\r\nNUL in a header only\r\n",
                    b"Content-Type: multipart/mixed; boundary=B\r\n\r\npre\x00amble\r\n"
                    b"--B\r\n\r\npart\r\n--B--\r\nepi\x00logue\r\n",
                    b"Content-Transfer-Encoding: x-unknown\r\n\r\nkept\x00as sent\r\n"):
        assert binary_to_base64(message) is message


def test_header_field_replaced_where_it_stands():
    message = (b"Subject: s\r\nContent-Transfer-Encoding:\r\n  binary\r\nX-Mid: m\r\n"
               b"content-transfer-encoding : 8bit\r\nX-Last: l\r\n\r\n\x00\x01\r\n")
    assert binary_to_base64(message) == (
        b"Subject: s\r\nContent-Transfer-Encoding: base64\r\nX-Mid: m\r\nX-Last: l\r\n\r\n"
        b"AAENCg==\r\n")


def test_header_field_added_with_the_blocks_line_ends():
    assert binary_to_base64(b"Subject: lf\n\nx\x00y") == (
        b"Subject: lf\nContent-Transfer-Encoding: base64\n\neAB5\r\n")


def test_encoded_parts_are_decoded_first():
    qp = (b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n"
          b"Content-Transfer-Encoding: quoted-printable\r\n\r\na=3Db\x00c=\r\nd\r\n--B--\r\n")
    assert binary_to_base64(qp) == (
        b"Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + b64(b"a=b\x00cd")[:-2] + b"\r\n--B--\r\n")


def test_nested_parts_and_everything_else_byte_for_byte():
    blob = bytes(range(256)) * 3
    text = b"Content-Type: text/plain\r\n\r\nline one\r\nline two\r\n"

    def build(cte, body, inner_cte, inner):
        return (b"Subject: outer\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n"
                b"preamble\r\n--o\r\n" + text +
                b"--o\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n"
                b"Content-Type: multipart/alternative; boundary=i\r\n\r\n--i\r\n" + text +
                b"--i\r\nContent-Type: application/octet-stream\r\n" + inner_cte + b"\r\n" + inner +
                b"\r\n--i--\r\n\r\n--o\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: "
                + cte + b"\r\n\r\n" + body + b"\r\n--o--\r\nepilogue\r\n")

    sent = build(b"binary", blob, b"", b"in\x00ner")
    converted = binary_to_base64(sent)
    assert converted == build(b"base64", b64(blob)[:-2], b"Content-Transfer-Encoding: base64\r\n",
                              b64(b"in\x00ner")[:-2])
    # what the email package decodes is what was sent
    parts = [p for p in email.message_from_bytes(converted).walk() if not p.is_multipart()]
    assert [p.get_payload(decode=True) for p in parts] == [
        b"line one\r\nline two", b"line one\r\nline two", b"in\x00ner", blob]
