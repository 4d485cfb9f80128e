"""What a hostile proxy file can make the root launcher compute: bounded, and forgeries fail first.

Signatures are checked from the trust anchor down, so a chain whose first proxy the EEC's key
never signed is refused at that link, before any key the file's author chose is used; and a
file holds at most ``pem.MAX_CERTIFICATES`` certificates. The fast path hands a signature it
cannot verify to cryptography, so its own verdict on a forgery is "handed over".
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from fixtures.credentials import _load, _pem_cert, _pem_key, _rsa, build_cert

from glexec_py.credentials import load_and_verify
from glexec_py.credentials.der import NotOnFastPath
from glexec_py.credentials.dn import render_name_der
from glexec_py.credentials.pem import MAX_CERTIFICATES
from glexec_py.errors import AuthorizationError, ClientError

ENGINES = ["auto", "fast", "cryptography"]


def verify(pem: bytes, test_ca, engine: str):
    return load_and_verify(pem, certdir=str(test_ca.certdir), vomsdir=None, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_forged_first_delegation_is_refused_before_the_links_below_it(test_ca, engine):
    user = _load(test_ca.user_cert)
    first_key, leaf_key, stranger = _rsa(), _rsa(), _rsa()
    # names say user -> first -> leaf, but the user's key signed nothing, and neither did
    # first_key: both signatures are bad, and the one nearer the anchor must be reported
    first = build_cert(user, stranger, first_key.public_key(), cn="111")
    leaf = build_cert(first, stranger, leaf_key.public_key(), cn="222")
    pem = _pem_cert(leaf) + _pem_key(leaf_key) + _pem_cert(first) + _pem_cert(user)
    first_dn = render_name_der(first.subject.public_bytes(serialization.Encoding.DER))
    if engine == "fast":
        with pytest.raises(NotOnFastPath):
            verify(pem, test_ca, engine)
        return
    with pytest.raises(AuthorizationError) as refused:
        verify(pem, test_ca, engine)
    assert refused.value.message.startswith(f"bad signature on {first_dn} (not signed by ")


@pytest.mark.parametrize("engine", ENGINES)
def test_a_file_with_too_many_certificates_is_a_client_error(test_ca, engine):
    user = _load(test_ca.user_cert)
    key = _rsa()
    leaf = build_cert(user, _load(test_ca.user_key), key.public_key(), cn="333")
    pem = _pem_cert(leaf) + _pem_key(key) + _pem_cert(user) * MAX_CERTIFICATES
    with pytest.raises(ClientError) as refused:
        verify(pem, test_ca, engine)
    assert refused.value.message == f"proxy file has more than {MAX_CERTIFICATES} certificates"
    # and one fewer is verified as usual (the duplicates of the EEC are simply not used)
    fine = _pem_cert(leaf) + _pem_key(key) + _pem_cert(user) * (MAX_CERTIFICATES - 1)
    user_dn = render_name_der(user.subject.public_bytes(serialization.Encoding.DER))
    assert verify(fine, test_ca, engine).dn == user_dn
