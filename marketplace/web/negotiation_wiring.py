"""The negotiation pages' calls into the rooms that own the rules (quotes, invitations and opportunities,
messages, NDA and drawings, the document store), shaped for the templates. No rule is decided here."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile

from marketplace.core.errors import AppError, NotFound, Unprocessable
from marketplace.core.pagination import decode_keyset, encode_cursor
from marketplace.core.principal import Principal
from marketplace.documents import service as documents
from marketplace.documents.endpoints import bytes_response, get_storage
from marketplace.documents.storage import CHUNK
from marketplace.messages import drawings, nda
from marketplace.messages import service as messages
from marketplace.messages.notices import buyer_hidden
from marketplace.messages.repository import MessageRepository
from marketplace.messages.schemas import MessageIn
from marketplace.orgs.repository import OrgRepository
from marketplace.quotes import invitations, opportunities
from marketplace.quotes.invitation_models import QuoteInvitation
from marketplace.quotes.invitation_repository import InvitationRepository
from marketplace.quotes.repository import QuoteRepository
from marketplace.requests.convert import request_out
from marketplace.requests.models import BuyerRequest
from marketplace.requests.repository import RequestRepository
from marketplace.requests.schemas import RequestFacts
from marketplace.web.core import N_, WebError

BOARD_PAGE = 20
THREAD_PAGE = 100  # messages shown on a thread page (newest ones, oldest first)


# -- opportunities -------------------------------------------------------------------------------------------


@dataclass
class Listing:
    id: uuid.UUID
    title: str
    currency: str


class OpportunityView(RequestFacts):
    """An open request as a factory sees it: the facts, never the buyer's identity."""

    id: uuid.UUID
    invited: bool
    invitation_status: str | None
    respond_by: datetime | None
    quoted: bool
    listings: list[str]
    listings_full: list[Listing]


def _view(r: BuyerRequest, *, fits: list[Listing], inv: QuoteInvitation | None) -> OpportunityView:
    invited = inv is not None and inv.via != "board" and inv.status != "withdrawn"
    return OpportunityView(
        **request_out(r).model_dump(include=set(RequestFacts.model_fields)),
        id=r.id,
        invited=invited,
        invitation_status=inv.status if invited and inv is not None else None,
        respond_by=inv.respond_by if invited and inv is not None else None,
        quoted=inv is not None and inv.status == "quoted",
        listings=[f.title for f in fits],
        listings_full=fits,
    )


async def opportunity_page(
    session: AsyncSession, user: Principal, *, org_id: uuid.UUID, cursor: str | None
) -> tuple[list[OpportunityView], str | None]:
    found = await opportunities.board(
        session=session, principal=user, org_id=org_id, after=decode_keyset(cursor), limit=BOARD_PAGE + 1
    )
    next_cursor = None
    if len(found) > BOARD_PAGE:
        found = found[:BOARD_PAGE]
        last = found[-1].request
        next_cursor = encode_cursor([last.created_at.isoformat(), str(last.id)])
    assets = {a.id: a for a in await InvitationRepository(session).published_assets(org_id)}
    return [
        _view(
            o.request,
            fits=[
                Listing(f.asset_id, o.titles.get(f.asset_id, ""), assets[f.asset_id].currency)
                for f in o.fits
                if f.asset_id in assets
            ],
            inv=o.invitation,
        )
        for o in found
    ], next_cursor


async def opportunity_for(
    session: AsyncSession, user: Principal, *, org_id: uuid.UUID, request_id: uuid.UUID
) -> OpportunityView | None:
    """The request as an opportunity of ``org_id`` (None when the organisation may not see it): one it may
    see now (``invitations.may_see``), or one it already quoted on (to follow its quotes after it closed)."""
    request = await RequestRepository(session).get(request_id)
    if request is None or request.buyer_org_id == org_id or not user.can_act_for(org_id, "requests:read"):
        return None
    inv = await InvitationRepository(session).of_org(request_id, org_id)
    if not await invitations.may_see(session, request=request, supplier_org_id=org_id):
        if not await QuoteRepository(session).for_request(request_id, [org_id]):
            return None
        return _view(request, fits=[], inv=inv)
    assets = await InvitationRepository(session).published_assets(org_id)
    fits = (await opportunities.fitting(session, [request], [a.id for a in assets], now=datetime.now(UTC)))[request.id]
    fitting_ids = {f.asset_id for f in fits}
    listings = [Listing(a.id, a.title, a.currency) for a in assets if a.id in fitting_ids]
    return _view(request, fits=listings, inv=inv)


async def decline_invitation(
    session: AsyncSession, user: Principal, *, org_id: uuid.UUID, request_id: uuid.UUID, reason: str
) -> None:
    if not reason.strip():
        raise Unprocessable("reason: say why you decline.")
    await invitations.decline(session=session, principal=user, request_id=request_id, reason=reason)


async def invitations_of(session: AsyncSession, user: Principal, *, request_id: uuid.UUID) -> list[QuoteInvitation]:
    return await invitations.list_for_request(session, user, request_id)


async def invite(session: AsyncSession, user: Principal, *, request_id: uuid.UUID, asset_id: uuid.UUID) -> None:
    await invitations.invite(session=session, principal=user, request_id=request_id, asset_id=asset_id)


# -- NDA and drawings ----------------------------------------------------------------------------------------


@dataclass
class Nda:
    version: str
    text: str

    @property
    def paragraphs(self) -> list[str]:
        """The text's paragraphs: the title and each numbered clause (indented lines continue a clause)."""
        out: list[str] = []
        for line in self.text.splitlines():
            if line.startswith(" ") and out:
                sep = "" if out[-1][-1:] > "\u2e7f" else " "  # Chinese lines join without a space
                out[-1] = f"{out[-1]}{sep}{line.strip()}"
            elif line.strip():
                out.append(line.strip())
        return out


async def nda_state(
    session: AsyncSession, *, request_id: uuid.UUID, org_id: uuid.UUID, locale: str, version: str
) -> tuple[Nda, datetime | None]:
    """The NDA in the page's language, and when ``org_id`` accepted it for the request (None: not yet)."""
    accepted = await MessageRepository(session).nda_acceptance(request_id, org_id)
    text = nda.NDA_TEXT_ZH if locale == "zh-CN" else nda.NDA_TEXT_EN
    return Nda(version=version, text=text), accepted.accepted_at if accepted else None


async def accept_nda(session: AsyncSession, user: Principal, request: Request, *, request_id: uuid.UUID) -> None:
    form = await request.form()
    await nda.accept(
        session,
        user,
        settings=request.app.state.settings,
        request_id=request_id,
        version=str(form.get("version") or ""),
    )


async def request_drawings(session: AsyncSession, user: Principal, *, request_id: uuid.UUID) -> list[Any]:
    """The drawings for someone allowed to see them (the drawings room decides; refused: an empty list)."""
    try:
        _required, docs = await drawings.listed(session, user, request_id=request_id)
    except AppError:
        return []
    return docs


async def _store_upload(
    request: Request, session: AsyncSession, user: Principal, *, org_id: uuid.UUID, upload: Any
) -> Any:
    """A file from a multipart form, into the document store for ``org_id``."""
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise Unprocessable("file: choose a file to upload.")

    async def chunks() -> AsyncIterator[bytes]:
        while chunk := await upload.read(CHUNK):
            yield chunk

    owner = documents.upload_org(user, org_id)
    return await documents.upload(
        session,
        principal=user,
        storage=get_storage(request),
        org_id=owner,
        filename=upload.filename,
        chunks=chunks(),
        max_bytes=request.app.state.settings.document_max_bytes,
    )


async def add_drawing(
    request: Request, session: AsyncSession, user: Principal, *, org_id: uuid.UUID, request_id: uuid.UUID, upload: Any
) -> None:
    doc = await _store_upload(request, session, user, org_id=org_id, upload=upload)
    await drawings.add(session, user, request_id=request_id, document_ids=[doc.id])


async def download(
    request: Request, session: AsyncSession, user: Principal, *, document_id: uuid.UUID
) -> StreamingResponse:
    doc, body = await documents.download(session, principal=user, storage=get_storage(request), document_id=document_id)
    return bytes_response(doc, body)


# -- message threads -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ThreadRef:
    """Which thread a page shows, for which of the viewer's organisations, and where it leads back to."""

    org_id: uuid.UUID
    role: str  # "buyer" or "supplier": the organisation's side
    request_id: uuid.UUID | None = None
    supplier_org_id: uuid.UUID | None = None
    booking_id: uuid.UUID | None = None
    back_url: str = ""
    back_label: str = ""
    heading: str = N_("Messages")

    @classmethod
    def buyer_request(cls, org_id: uuid.UUID, request_id: uuid.UUID, supplier_org_id: uuid.UUID) -> ThreadRef:
        return cls(
            org_id,
            "buyer",
            request_id=request_id,
            supplier_org_id=supplier_org_id,
            back_url=f"/buyer/{org_id}/requests/{request_id}/quotes",
            back_label=N_("Back to the quotes"),
            heading=N_("Messages about your request"),
        )

    @classmethod
    def factory_request(cls, org_id: uuid.UUID, request_id: uuid.UUID) -> ThreadRef:
        return cls(
            org_id,
            "supplier",
            request_id=request_id,
            supplier_org_id=org_id,
            back_url=f"/factory/{org_id}/opportunities/{request_id}",
            back_label=N_("Back to the opportunity"),
            heading=N_("Messages with the buyer"),
        )

    @classmethod
    def booking(cls, side: str, org_id: uuid.UUID, booking_id: uuid.UUID) -> ThreadRef:
        if side not in ("buyer", "factory"):
            raise WebError(404, "not_found")
        back = f"/buyer/{org_id}/bookings/{booking_id}" if side == "buyer" else f"/factory/{org_id}/bookings"
        return cls(
            org_id,
            "buyer" if side == "buyer" else "supplier",
            booking_id=booking_id,
            back_url=back,
            back_label=N_("Back to the booking"),
            heading=N_("Messages about the booking"),
        )


async def _seat(session: AsyncSession, user: Principal, ref: ThreadRef, *, write: bool) -> messages.Seat:
    if ref.booking_id is not None:
        seat = await messages.booking_seat(session, user, booking_id=ref.booking_id, write=write)
    else:
        if ref.request_id is None:  # a thread page names a booking or a request
            raise NotFound("Thread not found.")
        seat = await messages.request_seat(
            session, user, request_id=ref.request_id, supplier_org_id=ref.supplier_org_id, write=write
        )
    if seat.org_id != ref.org_id:  # the page is for one organisation: its seat, no other
        raise NotFound("Thread not found.")
    return seat


async def request_threads(session: AsyncSession, user: Principal, *, request_id: uuid.UUID) -> dict[uuid.UUID, int]:
    """The request's threads the viewer's organisations are in: supplier organisation → the viewer's unread."""
    rows = await messages.threads(session, user, after=None, limit=100)
    return {r.thread.supplier_org_id: r.unread for r in rows if r.thread.request_id == request_id}


@dataclass
class MessageView:
    id: uuid.UUID
    author: str
    body: str
    created_at: datetime
    mine: bool
    files: list[Any] = field(default_factory=list)
    anonymous_buyer: bool = False  # shown as "The buyer", never by name


async def thread_messages(session: AsyncSession, user: Principal, ref: ThreadRef) -> list[MessageView]:
    """The thread's newest messages, oldest first (reading marks the thread read)."""
    seat = await _seat(session, user, ref, write=False)
    rows = list(reversed(await messages.read_page(session, user, seat=seat, after=None, limit=THREAD_PAGE)))
    names = await OrgRepository(session).names({m.author_org_id for m in rows if m.author_org_id})
    files = await messages.files_of(session, rows)
    thread = seat.thread or seat.new
    # The factory's side of a request thread never learns who the buyer is (as in the API and the job board).
    hidden = thread is not None and buyer_hidden(thread, {ref.org_id})
    out = []
    for m in rows:
        by_buyer = thread is not None and m.author_org_id == thread.buyer_org_id
        author = names.get(m.author_org_id, "") if m.author_org_id else ""  # "": a platform admin
        view = MessageView(m.id, author, m.body, m.created_at, m.author_org_id == ref.org_id, files.get(m.id, []))
        view.anonymous_buyer = hidden and by_buyer
        out.append(view)
    return out


async def post_message(
    request: Request, session: AsyncSession, user: Principal, *, ref: ThreadRef, body: str, upload: Any
) -> None:
    data = MessageIn(body=body)  # the API's rules for a message's text
    seat = await _seat(session, user, ref, write=True)
    if isinstance(upload, UploadFile) and upload.filename:
        doc = await _store_upload(request, session, user, org_id=ref.org_id, upload=upload)
        data.document_ids.append(doc.id)
    await messages.post(session, user, seat=seat, body=data.body, document_ids=data.document_ids)
