"""The HTTP vocabulary both services speak: the JSON Schemas of the API (``schemas``) and the
readers of its requests (``readers``). It may import ``http`` and ``domain``; ``vacancy`` and
``ticket`` import it, so neither defines the other's words and ``domain`` stays free of HTTP."""
