"""What the rooms of the app shell attach documents to, besides bookings, requests and messages, and who besides
the uploader's organisation and the platform admins may read them:

* ``org_licence``: an organisation's business licence sent for verification (target: the organisation). Its
  members and the admins only.
* ``certificate``: the scan of a quality certificate (target: the certificate). The owner organisation, the
  admins, and buyers that have booked with the owner: a scan can carry the company's stamp, address and
  registration numbers, so it is shown to those who do business with it, not to every visitor (the public
  listing page shows the certificate's standard, number, scope and expiry instead).
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from marketplace.documents import access
from marketplace.documents.repository import DocumentRepository
from marketplace.documents.sniff import JPEG, PDF, PNG

ORG_LICENCE = "org_licence"
CERTIFICATE = "certificate"
# A licence or a certificate is a scan or a PDF: never a CAD drawing.
SCAN_TYPES = frozenset({PDF, PNG, JPEG})


async def _licence_party(session: AsyncSession, org_id: uuid.UUID, org_ids: frozenset[uuid.UUID]) -> bool:
    return org_id in org_ids


async def _certificate_party(session: AsyncSession, cert_id: uuid.UUID, org_ids: frozenset[uuid.UUID]) -> bool:
    return await DocumentRepository(session).certificate_customer(cert_id, org_ids)


access.register_party_check(ORG_LICENCE, _licence_party)
access.register_party_check(CERTIFICATE, _certificate_party)
