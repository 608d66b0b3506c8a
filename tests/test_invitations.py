"""Invitations need the invitee's consent, proven by the token mailed to the invited address; an organisation
always keeps an owner (service check under a row lock, and a deferred trigger at commit)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from httpx import ASGITransport, AsyncClient
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from marketplace.auth.models import User
from marketplace.core.principal import Principal
from marketplace.core.settings import Settings
from marketplace.orgs import service
from marketplace.orgs.models import MemberRole, Membership, Organisation
from tests.factories import PASSWORD, csrf_token, login, signed_up, unique_email

# -- a real SMTP server ------------------------------------------------------------------------------


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.content if isinstance(envelope.content, bytes) else envelope.content.encode()
        self.messages.append(email.message_from_bytes(raw, policy=email.policy.default))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"

    def token_for(self, address: str) -> str:
        """The token of the last accept link mailed to ``address``."""
        for message in reversed(self.messages):
            if message["To"] == address:
                found = re.search(r"/invitations/accept\?token=([A-Za-z0-9_-]+)", message.get_content())
                assert found, message.get_content()
                return found.group(1)
        raise AssertionError(f"no e-mail to {address}")


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


class Team:
    """An organisation with its owner, and the mail settings that reach the test SMTP server."""

    def __init__(self, client: AsyncClient, db: AsyncSession, settings: Settings, box: Mailbox, port: int) -> None:
        self.client, self.db, self.box = client, db, box
        self.mail_settings = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": port})

    async def start(self) -> Team:
        reg, self.owner = await signed_up(self.client)
        self.org_id = reg["org"]["id"]
        self.owner_id = reg["user"]["id"]
        self.owner_email = reg["email"]
        await self.verify(self.owner_email)
        return self

    async def verify(self, address: str) -> None:
        await self.db.execute(
            sa.text("UPDATE users SET email_verified_at = now() WHERE lower(email) = lower(:e)"), {"e": address}
        )
        await self.db.commit()

    async def person(self, address: str | None = None, *, verified: bool = True) -> dict[str, str]:
        address = address or unique_email("person")
        r = await self.client.post(
            "/api/v1/auth/register",
            json={"email": address, "password": PASSWORD, "full_name": "Person", "locale": "en"},
        )
        assert r.status_code == 201, r.text
        if verified:
            await self.verify(address)
        return await login(self.client, address)

    async def invite(self, address: str, role: str = "member") -> dict[str, Any]:
        r = await self.client.post(
            f"/api/v1/orgs/{self.org_id}/members", json={"email": address, "role": role}, headers=self.owner
        )
        assert r.status_code == 201, r.text
        out: dict[str, Any] = r.json()
        await self.mail(out["id"])
        return out

    async def mail(self, invitation_id: str) -> None:
        """What the ``orgs.send_invitation`` job (written to the outbox by the request) does: mail the current
        link through real SMTP."""
        queued = await self.db.execute(
            sa.text("SELECT count(*) FROM outbox WHERE task = 'orgs.send_invitation' AND args->>0 = :id"),
            {"id": invitation_id},
        )
        assert queued.scalar_one() >= 1
        sent = await service.send_invitation_email(
            self.db, settings=self.mail_settings, invitation_id=uuid.UUID(invitation_id)
        )
        assert sent

    async def accept(self, headers: dict[str, str], token: str) -> Any:
        return await self.client.post("/api/v1/invitations/accept", json={"token": token}, headers=headers)

    async def roles(self) -> dict[str, str]:
        r = await self.client.get(f"/api/v1/orgs/{self.org_id}/members", headers=self.owner)
        return {m["email"]: m["role"] for m in r.json()["items"]}


@pytest.fixture
async def team(
    client: AsyncClient, db: AsyncSession, settings: Settings, mailbox: tuple[Mailbox, int]
) -> AsyncIterator[Team]:
    yield await Team(client, db, settings, *mailbox).start()


# -- consent ---------------------------------------------------------------------------------------


async def test_registering_the_invited_address_does_not_take_the_invitation(team: Team) -> None:
    newcomer = unique_email("invitee")
    await team.invite(newcomer, role="owner")
    # An attacker registers the invited address first (without owning the mailbox): nothing is joined ...
    attacker = await team.person(newcomer, verified=False)
    assert newcomer not in await team.roles()
    me = (await team.client.get("/api/v1/me", headers=attacker)).json()
    assert me["memberships"] == []
    # ... the pending invitation is not shown to an unproven claim on the address ...
    listed = await team.client.get("/api/v1/invitations", headers=attacker)
    assert listed.status_code == 403 and listed.json()["error"] == "email_unverified"
    # ... and even with the mailed token an unverified account cannot accept.
    refused = await team.accept(attacker, team.box.token_for(newcomer))
    assert refused.status_code == 403 and refused.json()["error"] == "email_unverified"
    assert newcomer not in await team.roles()


async def test_the_token_is_bound_to_the_invited_address(team: Team) -> None:
    invitee = unique_email("invitee")
    await team.invite(invitee, role="owner")
    token = team.box.token_for(invitee)
    # Someone else, verified and signed in, who got hold of the link learns nothing and joins nothing.
    stranger = await team.person()
    r = await team.accept(stranger, token)
    assert r.status_code == 404 and r.json()["error"] == "invitation_not_found"
    assert team.org_id not in r.text and invitee not in r.text
    # A guessed token is the same 404.
    assert (await team.accept(stranger, "A" * 43)).json()["error"] == "invitation_not_found"

    # The invitee (case differs in the address they registered with) accepts and becomes owner.
    owner_to_be = await team.person(invitee.upper())
    accepted = await team.accept(owner_to_be, token)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["id"] == team.org_id
    assert (await team.roles())[invitee] == "owner"
    # Single use.
    assert (await team.accept(owner_to_be, token)).status_code == 404


async def test_inviting_an_existing_account_adds_nobody_and_reveals_nothing(team: Team) -> None:
    existing = unique_email("existing")
    existing_headers = await team.person(existing)
    unknown = unique_email("unknown")
    answers = [await team.invite(existing), await team.invite(unknown)]
    # The same shape whether or not an account exists: no user id, no name.
    assert sorted(answers[0]) == sorted(answers[1])
    for answer in answers:
        assert "user_id" not in answer and "full_name" not in answer and answer["status"] == "pending"
    assert existing not in await team.roles()
    me = (await team.client.get("/api/v1/me", headers=existing_headers)).json()
    assert me["memberships"] == []

    # The invitee sees the invitation after signing in and may accept it from the list (e-mail bound).
    pending = (await team.client.get("/api/v1/invitations", headers=existing_headers)).json()["items"]
    assert [(p["org_id"], p["role"]) for p in pending] == [(team.org_id, "member")]
    assert (await team.accept(existing_headers, team.box.token_for(existing))).status_code == 200
    assert (await team.roles())[existing] == "member"


async def test_inviting_yourself_cannot_demote_the_last_owner(team: Team) -> None:
    r = await team.client.post(
        f"/api/v1/orgs/{team.org_id}/members",
        json={"email": team.owner_email.upper(), "role": "member"},
        headers=team.owner,
    )
    assert r.status_code == 409 and r.json()["error"] == "already_member"
    assert (await team.roles())[team.owner_email] == "owner"


async def test_the_last_owner_cannot_be_demoted_or_removed(team: Team) -> None:
    url = f"/api/v1/orgs/{team.org_id}/members/{team.owner_id}"
    demote = await team.client.patch(url, json={"role": "member"}, headers=team.owner)
    assert demote.status_code == 409 and demote.json()["error"] == "last_owner"
    leave = await team.client.delete(url, headers=team.owner)
    assert leave.status_code == 409 and leave.json()["error"] == "last_owner"

    # With a second owner, one can step down.
    second = unique_email("second")
    second_headers = await team.person(second)
    await team.invite(second, role="owner")
    assert (await team.accept(second_headers, team.box.token_for(second))).status_code == 200
    stepped_down = await team.client.patch(url, json={"role": "member"}, headers=team.owner)
    assert stepped_down.status_code == 200 and stepped_down.json()["role"] == "member"
    assert (await team.roles())[team.owner_email] == "member"
    # The former owner, now a plain member, cannot change roles.
    second_id = (await team.client.get("/api/v1/me", headers=second_headers)).json()["user"]["id"]
    r = await team.client.patch(
        f"/api/v1/orgs/{team.org_id}/members/{second_id}", json={"role": "member"}, headers=team.owner
    )
    assert r.status_code == 403 and r.json()["error"] == "forbidden"


async def test_an_expired_invitation_cannot_be_accepted(team: Team) -> None:
    invitee = unique_email("late")
    headers = await team.person(invitee)
    invitation = await team.invite(invitee)
    token = team.box.token_for(invitee)
    await team.db.execute(
        sa.text("UPDATE org_invitations SET expires_at = now() - interval '1 second' WHERE id = :id"),
        {"id": invitation["id"]},
    )
    await team.db.commit()
    r = await team.accept(headers, token)
    assert r.status_code == 409 and r.json()["error"] == "invitation_expired"
    assert (await team.client.get("/api/v1/invitations", headers=headers)).json()["items"] == []
    assert invitee not in await team.roles()


async def test_a_revoked_invitation_cannot_be_accepted(team: Team) -> None:
    invitee = unique_email("revoked")
    headers = await team.person(invitee)
    invitation = await team.invite(invitee)
    token = team.box.token_for(invitee)
    url = f"/api/v1/orgs/{team.org_id}/invitations"
    assert [i["id"] for i in (await team.client.get(url, headers=team.owner)).json()["items"]] == [invitation["id"]]
    assert (await team.client.delete(f"{url}/{invitation['id']}", headers=team.owner)).status_code == 204
    assert (await team.client.get(url, headers=team.owner)).json()["items"] == []
    assert (await team.accept(headers, token)).status_code == 404
    assert invitee not in await team.roles()


async def test_resending_an_invitation_replaces_its_link(team: Team) -> None:
    invitee = unique_email("resent")
    headers = await team.person(invitee)
    invitation = await team.invite(invitee)
    old_token = team.box.token_for(invitee)
    r = await team.client.post(f"/api/v1/orgs/{team.org_id}/invitations/{invitation['id']}/resend", headers=team.owner)
    assert r.status_code == 200 and r.json()["expires_at"] > invitation["expires_at"]
    await team.mail(invitation["id"])
    new_token = team.box.token_for(invitee)
    assert new_token != old_token and len(team.box.messages) == 2
    stored = await team.db.execute(
        sa.text(
            "SELECT token_hash, (SELECT string_agg(args::text, ' ') FROM outbox) FROM org_invitations WHERE id = :id"
        ),
        {"id": invitation["id"]},
    )
    token_hash, outbox_args = stored.one()
    assert new_token not in (token_hash or "") and new_token not in (outbox_args or "")
    assert (await team.accept(headers, old_token)).status_code == 404
    assert (await team.accept(headers, new_token)).status_code == 200


async def test_members_cannot_manage_invitations(team: Team) -> None:
    member = unique_email("member")
    headers = await team.person(member)
    invitation = await team.invite(member)
    assert (await team.accept(headers, team.box.token_for(member))).status_code == 200
    other = await team.invite(unique_email("other"))
    url = f"/api/v1/orgs/{team.org_id}"
    assert (await team.client.get(f"{url}/invitations", headers=headers)).status_code == 403
    assert (await team.client.post(f"{url}/invitations/{other['id']}/resend", headers=headers)).status_code == 403
    assert (await team.client.delete(f"{url}/invitations/{other['id']}", headers=headers)).status_code == 403
    assert (
        await team.client.post(f"{url}/members", json={"email": unique_email()}, headers=headers)
    ).status_code == 403
    assert invitation["id"] != other["id"]


# -- the owner invariant under concurrency (real commits) ---------------------------------------------


async def _two_owner_org(maker: async_sessionmaker[AsyncSession]) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    async with maker() as s:
        a, b = (User(email=unique_email("owner"), password_hash="x", full_name="Owner") for _ in range(2))
        org = Organisation(name="Race", country="DE", roles=["supplier"])
        s.add_all([a, b, org])
        await s.flush()
        s.add_all([Membership(org_id=org.id, user_id=u.id, role="owner") for u in (a, b)])
        await s.commit()
        return org.id, a.id, b.id


async def _owners(maker: async_sessionmaker[AsyncSession], org_id: uuid.UUID) -> int:
    async with maker() as s:
        result = await s.execute(
            sa.text("SELECT count(*) FROM memberships WHERE org_id = :o AND role = 'owner'"), {"o": org_id}
        )
        return int(result.scalar_one())


def _owner(user_id: uuid.UUID, org_id: uuid.UUID) -> Principal:
    return Principal(user_id=user_id, memberships={org_id: "owner"})


async def test_two_owners_demoting_each_other_at_once_leave_one_owner(committed_engine: AsyncEngine) -> None:
    """Both requests run the service; the first holds the organisation's owner lock until it commits, so the
    second re-counts after it and is refused."""
    maker = async_sessionmaker(committed_engine, expire_on_commit=False)
    org_id, a, b = await _two_owner_org(maker)
    async with maker() as first, maker() as second:
        await service.change_role(first, _owner(a, org_id), org_id=org_id, user_id=b, role=MemberRole.member)
        racing = asyncio.create_task(
            service.change_role(second, _owner(b, org_id), org_id=org_id, user_id=a, role=MemberRole.member)
        )
        await asyncio.sleep(0.5)
        assert not racing.done()  # waiting for the first one's lock
        await first.commit()
        with pytest.raises(service.LastOwner):
            await racing
        await second.rollback()
    assert await _owners(maker, org_id) == 1


async def _demote_without_the_service(
    maker: async_sessionmaker[AsyncSession], org_id: uuid.UUID, a: uuid.UUID, b: uuid.UUID, *, triggers: bool
) -> list[BaseException | None]:
    """Two transactions each see two owners (the check a service without a lock would make), each demote
    the other owner, then both commit."""
    check = sa.text("SELECT count(*) FROM memberships WHERE org_id = :o AND role = 'owner'")
    demote = sa.text("UPDATE memberships SET role = 'member' WHERE org_id = :o AND user_id = :u")
    async with maker() as one, maker() as two:
        for s, target in ((one, b), (two, a)):
            if not triggers:
                await s.execute(sa.text("SET LOCAL session_replication_role = replica"))  # triggers off
            assert (await s.execute(check, {"o": org_id})).scalar_one() == 2
            await s.execute(demote, {"o": org_id, "u": target})
        outcomes: list[BaseException | None] = []
        for s in (one, two):
            try:
                await s.commit()
                outcomes.append(None)
            except DBAPIError as exc:
                outcomes.append(exc)
                await s.rollback()
        return outcomes


async def test_the_database_refuses_to_commit_an_organisation_without_owner(committed_engine: AsyncEngine) -> None:
    maker = async_sessionmaker(committed_engine, expire_on_commit=False)
    org_id, a, b = await _two_owner_org(maker)
    outcomes = await _demote_without_the_service(maker, org_id, a, b, triggers=True)
    assert outcomes[0] is None
    assert outcomes[1] is not None and "would be left without an owner" in str(outcomes[1])
    assert await _owners(maker, org_id) == 1


async def test_control_without_the_trigger_both_demotions_commit(committed_engine: AsyncEngine) -> None:
    """Control: the same interleaving with triggers off leaves the organisation with no owner, so the test
    above would catch a missing or non-serialising trigger."""
    maker = async_sessionmaker(committed_engine, expire_on_commit=False)
    org_id, a, b = await _two_owner_org(maker)
    outcomes = await _demote_without_the_service(maker, org_id, a, b, triggers=False)
    assert outcomes == [None, None]
    assert await _owners(maker, org_id) == 0


async def test_deleting_an_organisation_is_not_blocked_by_the_owner_rule(committed_engine: AsyncEngine) -> None:
    maker = async_sessionmaker(committed_engine, expire_on_commit=False)
    org_id, _, _ = await _two_owner_org(maker)
    async with maker() as s:
        await s.execute(sa.text("DELETE FROM organisations WHERE id = :o"), {"o": org_id})
        await s.commit()
    assert await _owners(maker, org_id) == 0


# -- web pages -------------------------------------------------------------------------------------


async def _web_sign_in(client: AsyncClient, address: str, *, locale: str = "en") -> str:
    token = csrf_token((await client.get("/login")).text)
    assert (
        await client.post("/login", data={"email": address, "password": PASSWORD, "csrf_token": token})
    ).status_code == 303
    page = await client.get("/dashboard")
    token = csrf_token(page.text)
    await client.post("/lang", data={"locale": locale, "next": "/dashboard", "csrf_token": token})
    return csrf_token((await client.get("/dashboard")).text)


async def test_the_team_page_invites_and_the_mailed_link_lets_the_invitee_join(app: Any, team: Team) -> None:
    owner_web = AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver")
    invitee_web = AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver")
    async with owner_web, invitee_web:
        csrf = await _web_sign_in(owner_web, team.owner_email, locale="zh-CN")
        invitee = unique_email("web")
        sent = await owner_web.post(
            f"/orgs/{team.org_id}/team/invite", data={"email": invitee, "role": "member", "csrf_token": csrf}
        )
        assert sent.status_code == 303 and sent.headers["location"].endswith("notice=invited")
        page = await owner_web.get(sent.headers["location"])
        assert page.status_code == 200 and "邀请已发送" in page.text and invitee in page.text
        assert "invited" not in page.text.replace("notice=invited", "")  # no internal code on a Chinese page
        invitation_id = re.search(r'data-invitation="([0-9a-f-]+)"', page.text).group(1)  # type: ignore[union-attr]
        await team.mail(invitation_id)

        # The link from the e-mail: the invitee signs in, sees one button, and joins.
        link = re.search(r"https?://\S+/invitations/accept\?token=\S+", team.box.messages[-1].get_content())
        assert link, team.box.messages[-1].get_content()
        path = link.group(0).split("://", 1)[1].split("/", 1)[1]
        assert (await invitee_web.get(f"/{path}")).status_code in (302, 303, 307)  # sign in first
        await team.person(invitee)
        csrf_invitee = await _web_sign_in(invitee_web, invitee)
        accept_page = await invitee_web.get(f"/{path}")
        assert accept_page.status_code == 200 and "Accept invitation" in accept_page.text
        token = re.search(r'name="token" value="([^"]+)"', accept_page.text).group(1)  # type: ignore[union-attr]
        joined = await invitee_web.post("/invitations/accept", data={"token": token, "csrf_token": csrf_invitee})
        assert joined.status_code == 303 and joined.headers["location"] == f"/orgs/{team.org_id}/team?notice=joined"
        assert (await team.roles())[invitee] == "member"

        # The owner cannot be demoted from the team page either (last owner), and sees why in Chinese.
        demote = await owner_web.post(
            f"/orgs/{team.org_id}/team/members/{team.owner_id}/role", data={"role": "member", "csrf_token": csrf}
        )
        shown = await owner_web.get(demote.headers["location"])
        assert "组织至少需要一名所有者" in shown.text and (await team.roles())[team.owner_email] == "owner"
