"""`{% dataset_training_panel repo %}`: on a dataset page, "Train an adapter" and the adapters trained on it."""

from __future__ import annotations

from django import template

from hub.training.selectors import adapters_trained_on

register = template.Library()


@register.inclusion_tag("training/_dataset_panel.html", takes_context=True)
def dataset_training_panel(context: template.Context, repo) -> dict:
    user = context["request"].user
    return {"repo": repo, "adapters": list(adapters_trained_on(user, repo)), "user": user}


@register.filter
def duration(seconds: float | None) -> str:
    """Seconds as people say them: 45 s, 3 min 20 s, 2 h 5 min."""
    if seconds is None:
        return "—"
    total = max(0, round(float(seconds)))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"
