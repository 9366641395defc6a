"""A small HTTP/ASGI toolkit: the vocabulary its parts share, a framework, a server, a client.

- ``models`` and ``errors``: the request, the response, the handler between them, ASGI's
  callables; ``HTTPError`` and its JSON answer. Both the framework and the server speak them.
- The framework: ``application`` (``App``: routing, the error table, the ASGI adapter),
  ``routing``, ``requests`` (strict JSON body readers), ``responses``, ``auth``, ``openapi``.
- ``server/``: the embedded HTTP/1.1 server; it runs any ASGI app.
- ``client``: the keep-alive connection pool.

It knows nothing of tickets; nothing here imports from the rest of ticketsys, and the server
and the framework never import each other (``tests/test_layers.py``).
"""
