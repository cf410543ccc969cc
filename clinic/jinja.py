"""The project's Jinja2 engine (the second in settings.TEMPLATES), for the few templates drawn
thousands of times: the rows of the long stock-report tables and the reminder email. Their
text comes translated in the context; autoescape is on."""

from django.template import engines


def render(template_name: str, context: dict) -> str:
    return engines["jinja2"].get_template(template_name).render(context)
