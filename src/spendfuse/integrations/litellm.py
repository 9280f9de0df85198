"""LiteLLM hook: consult spendfuse's ``decide`` before each call, publish a cost event after it.

    import litellm
    from spendfuse.gateway import ControlClient
    from spendfuse.integrations.litellm import SpendfuseLiteLLMCallback
    from spendfuse.producer import CostEventPublisher

    litellm.callbacks = [SpendfuseLiteLLMCallback(
        ControlClient.from_settings().start(), CostEventPublisher("kafka:9092"),
        defaults={"tenant_id": "acme", "risk_tier": "low", "environment": "prod"},
        small_model="gpt-4o-mini",
        trust_request_metadata=True,  # SDK: the metadata below is your own code's
    )]
    await litellm.acompletion(model="gpt-4o", messages=[...],
                              metadata={"use_case_id": "support-bot", "prompt_version": "v7"})

On a LiteLLM proxy, list it under ``litellm_settings.callbacks`` (a module exposing an instance).

Identity. Tenant, use case, risk tier and environment (:data:`IDENTITY`) decide which kill
switches apply and whom spend is charged to, so on a proxy they come from the *authenticated*
virtual key: its metadata, then its team's metadata (``user_api_key_dict`` in the pre-call hook,
the ``user_api_key_metadata`` / ``user_api_key_team_metadata`` the proxy writes over the
request's metadata afterwards), then ``defaults``. A client's own request metadata is ignored for
them unless ``trust_request_metadata=True`` (the SDK, where the caller is your code). Set them on
the key: ``/key/generate`` with ``metadata: {"tenant_id": "acme", "use_case_id": "support-bot",
"risk_tier": "low"}``. Other attributes (prompt version, tool, trace) come from request metadata.
Before the call (``async_pre_call_hook`` on the proxy, ``async_pre_call_deployment_hook`` for the
SDK and after proxy routing) a ``deny`` raises :class:`SpendfuseDeniedError` and a ``degrade``
rewrites the request, per level:

* L1: ``small_model``, ``max_tokens`` capped, LiteLLM's cache first;
* L2: ``spillover_model`` (on-demand capacity) when set, else tagged ``spendfuse_spillover`` for
  the router; batch and sandbox requests are refused as paused (:class:`SpendfusePausedError`);
* L3: ``fallback_model`` (the approved fallback); without one configured the call is refused
  rather than sent to a model nobody approved; batch and sandbox paused;
* L4: refused, with ``manual_workflow`` set: the work goes through the manual workflow.

A request's workload is ``workload`` (``batch``, ``sandbox``, ``interactive``) in the
authenticated key's or team's metadata, else in the request's metadata; or its environment is
``sandbox``. A denial whose ``decision.handoff_to_human`` is set (a stopped agent
task of medium risk or above) says the task is handed to a human. After a successful
call it publishes one cost event with LiteLLM's own ``response_cost`` (``allocated_cost_usd``),
never blocking the request. Install with ``pip install 'spendfuse[litellm]'``.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any

from litellm.integrations.custom_logger import CustomLogger

from spendfuse.gateway.decision import Decision
from spendfuse.producer import CostEventPublisher
from spendfuse.schemas.errors import EventRejectedError, SpendfuseError

log = logging.getLogger(__name__)
IDENTITY = ("tenant_id", "use_case_id", "risk_tier", "environment")
_ATTRIBUTES = ("prompt_version", "tool", "route_policy_version", "trace_id", "workload")
_EVENT_FIELDS = (
    "business_unit",
    "cost_center",
    "workflow_step",
    "user_role",
    "route_policy_version",
    "prompt_version",
    "trace_id",
    "business_outcome_id",
)


class SpendfuseDeniedError(SpendfuseError, PermissionError):
    """A kill switch is in force for this request; ``decision`` says which, why and how to lift."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(f"spendfuse denied the request: {decision.reason}")
        self.decision = decision
        self.handoff_to_human = decision.handoff_to_human
        self.manual_workflow = decision.manual_workflow


class SpendfusePausedError(SpendfuseDeniedError):
    """This request's workload (batch, sandbox) is paused: queue it and retry after
    ``decision.expires_at_s`` or once the command is lifted."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(decision)
        self.workload = decision.paused


def _metadata(kwargs: dict[str, Any]) -> dict[str, Any]:
    meta = kwargs.get("metadata") or {}
    params = kwargs.get("litellm_params") or {}
    return {**(params.get("metadata") or {}), **meta}


def _key_identity(user_api_key_dict: Any) -> list[dict[str, Any]]:
    """The authenticated key's metadata, then its team's (LiteLLM's ``UserAPIKeyAuth``)."""
    return [
        getattr(user_api_key_dict, "metadata", None) or {},
        getattr(user_api_key_dict, "team_metadata", None) or {},
    ]


def _proxy_identity(meta: dict[str, Any]) -> list[dict[str, Any]]:
    """The same, as the proxy copies it into the request's metadata (over the client's)."""
    return [meta.get("user_api_key_metadata") or {}, meta.get("user_api_key_team_metadata") or {}]


class SpendfuseLiteLLMCallback(CustomLogger):
    """``decide`` before, cost event after; identity from the authenticated key (see module)."""

    def __init__(
        self,
        client: Any,
        publisher: CostEventPublisher | None = None,
        *,
        defaults: dict[str, str] | None = None,
        small_model: str | None = None,
        fallback_model: str | None = None,
        spillover_model: str | None = None,
        trust_request_metadata: bool = False,
    ) -> None:
        super().__init__()
        self.client = client
        self.publisher = publisher
        self.defaults = defaults or {}
        self.small_model = small_model
        self.fallback_model = fallback_model
        self.spillover_model = spillover_model
        self.trust_request_metadata = trust_request_metadata
        self.published = 0
        self._pricing_version = f"litellm-{version('litellm')}"

    def identity(self, kwargs: dict[str, Any], user_api_key_dict: Any = None) -> dict[str, Any]:
        """Tenant, use case, risk tier, environment: authenticated key, team, then defaults;
        the request's own metadata only when ``trust_request_metadata``."""
        meta = _metadata(kwargs)
        sources = _key_identity(user_api_key_dict) if user_api_key_dict is not None else []
        sources += _proxy_identity(meta)
        if self.trust_request_metadata:
            sources.append(meta)
        sources.append(self.defaults)
        out: dict[str, Any] = {}
        for name in IDENTITY:
            out[name] = next((s[name] for s in sources if s.get(name) is not None), None)
        return out

    def attributes(self, kwargs: dict[str, Any], user_api_key_dict: Any = None) -> dict[str, Any]:
        meta = _metadata(kwargs)
        attrs = {k: meta.get(k, self.defaults.get(k)) for k in _ATTRIBUTES}
        # a key or team marked as batch/sandbox stays paused whatever its calls say
        keyed = _key_identity(user_api_key_dict) if user_api_key_dict is not None else []
        for source in keyed + _proxy_identity(meta):
            if source.get("workload") is not None:
                attrs["workload"] = source["workload"]
                break
        attrs.update(self.identity(kwargs, user_api_key_dict))
        attrs["model"] = kwargs.get("model")
        return attrs

    def apply(self, kwargs: dict[str, Any], user_api_key_dict: Any = None) -> dict[str, Any]:
        """Deny (raise) or degrade (rewrite ``kwargs``) per the client's decision."""
        decision = self.client.decide(self.attributes(kwargs, user_api_key_dict))
        if decision.action == "allow":
            return kwargs
        if decision.action == "deny":
            if decision.paused:
                raise SpendfusePausedError(decision)
            raise SpendfuseDeniedError(decision)
        meta = kwargs.setdefault("metadata", {})
        if decision.model_tier == "small" and self.small_model:
            kwargs["model"] = self.small_model
        elif decision.model_tier == "approved_fallback":
            if not self.fallback_model:  # never guess a model nobody approved
                raise SpendfuseDeniedError(
                    replace(
                        decision,
                        action="deny",
                        reason=f"{decision.reason}; no approved fallback model is configured"
                        " (SpendfuseLiteLLMCallback(fallback_model=...))",
                    )
                )
            kwargs["model"] = self.fallback_model
        if decision.spillover:
            meta["spendfuse_spillover"] = True
            if self.spillover_model:
                kwargs["model"] = self.spillover_model
        cap = decision.max_output_tokens
        if cap is not None:
            kwargs["max_tokens"] = min(kwargs.get("max_tokens") or cap, cap)
        if decision.cache_first:
            kwargs["caching"] = True
        meta["spendfuse_degraded"] = decision.level or "degraded"
        return kwargs

    async def async_pre_call_hook(
        self, user_api_key_dict: Any, cache: Any, data: dict, call_type: Any
    ) -> dict:
        return self.apply(data, user_api_key_dict)

    async def async_pre_call_deployment_hook(self, kwargs: dict, call_type: Any) -> dict:
        return self.apply(kwargs)

    def cost_event(self, kwargs: dict[str, Any], response_obj: Any, end_time: Any) -> dict:
        """The cost event for one finished call, priced by LiteLLM (``response_cost``)."""
        meta = _metadata(kwargs)
        usage = getattr(response_obj, "usage", None)
        when = end_time if isinstance(end_time, datetime) else datetime.now(UTC)
        event: dict[str, Any] = {
            "schema_version": 1,
            "cost_event_id": kwargs.get("litellm_call_id"),
            "event_time": when.astimezone(UTC).isoformat(),  # LiteLLM's times are local, naive
            "component": "model_call",
            "provider": kwargs.get("custom_llm_provider"),
            "model_or_service": kwargs.get("model"),
            "input_tokens": getattr(usage, "prompt_tokens", None),
            "output_tokens": getattr(usage, "completion_tokens", None),
            "allocated_cost_usd": kwargs.get("response_cost"),
            "allocation_method": "direct_metered",
            "pricing_version": self._pricing_version,
        }
        for name in _EVENT_FIELDS:
            value = meta.get(name, self.defaults.get(name))
            if value is not None:
                event[name] = value
        for name, value in self.identity(kwargs).items():  # spend charged to the key's owner
            if value is not None:
                event[name] = value
        return {k: v for k, v in event.items() if v is not None}

    def log_success_event(
        self, kwargs: dict, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        if self.publisher is None:
            return
        try:
            self.publisher.publish(self.cost_event(kwargs, response_obj, end_time))
            self.published += 1
        except EventRejectedError as exc:  # attribution missing: say which field, never raise
            log.warning(
                "cost event for call %s not published: %s", kwargs.get("litellm_call_id"), exc
            )

    async def async_log_success_event(
        self, kwargs: dict, response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        self.log_success_event(kwargs, response_obj, start_time, end_time)
