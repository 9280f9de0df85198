"""The control topic's producing side: signing, key files, publishing commands, operator CLI.

Importing this package imports nothing: the gateway client uses :mod:`spendfuse.control.signing`
alone and must stay cheap to import.
"""
