"""The figures of one scenario as the lines docs/redis.md quotes (and a failing test prints)."""

from __future__ import annotations

from bench.failover.scenario import Figures


def report(fig: Figures) -> str:
    """The figures of one scenario as the lines docs/redis.md quotes."""
    rates = fig.rates or {}
    degraded = "never degraded" if fig.degraded_s is None else f"{fig.degraded_s:.1f} s"
    lines = [
        f"== {fig.scenario}: {fig.action}",
        f"capacity: partner route {fig.partner_capacity:,.0f} req/s (2 gateways), pricing pool "
        f"{fig.pricing_capacity:,.1f} jobs/s; steady load: partner {rates.get('partner', 0):,.0f} req/s "
        f"(limit {fig.limit}/s), quotes {rates.get('quotes', 0):,.1f}/s, "
        f"CRM orders {rates.get('crm', 0):,.1f}/s",
        f"answers: {fig.statuses}",
        f"client-visible 5xx or no answer through the gateways: {fig.server_errors}; CRM stand-in "
        f"refusals (5xx, the legacy CRM's own answer): {fig.crm_refused}"
        f"{'; the 5xx said: ' + fig.error_details if fig.error_details else ''}",
        f"degraded (gateways' gateway_ratelimit_degraded sampled every 0.2 s, first → last back to "
        f"shared): {degraded}; switches to degraded mode (both gateways): {fig.degraded_episodes}",
        f"rate limit over the {fig.window_s:.1f} s window: admitted {fig.admitted}, allowed "
        f"{fig.allowed:.0f} (limit x window + one window), beyond the limit {fig.over_admitted:.0f} "
        f"(same-length window before the disruption: {fig.baseline_over:.0f})",
        f"quote jobs: {fig.jobs} accepted, {fig.lost_jobs} lost (not done/failed after the drain"
        f"{': ' + fig.lost_states if fig.lost_states else ''}), "
        f"{fig.failed_jobs} failed, {fig.priced_twice} models priced twice by the MES (at-least-once)",
        f"CRM orders: {fig.crm_orders} accepted, {fig.lost_orders} lost (never reached the MES, or an id "
        f"handed out twice: {fig.crm_ids_twice})",
    ]
    return "\n".join(lines)
