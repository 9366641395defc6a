"""A small HTTP/ASGI toolkit: routing, requests, responses, errors, a server and a client.

It knows nothing of tickets; nothing here imports from the rest of ticketsys.
"""
