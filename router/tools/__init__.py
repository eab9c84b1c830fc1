"""The command line and the policy tools: ``router validate | explain | diff | schema | serve | chat |
image | speak``.

``cli`` parses arguments and dispatches; ``explain`` prints one routing decision; ``diff`` compares two
policies request by request. They use the library as a user would and configure logging for the CLI.

May import anything in ``router``; nothing in ``router`` imports them.
"""
