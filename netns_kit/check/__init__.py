"""Checking a lab: which namespace reaches which address (the checker, its probe plan
and result), the neighbour limits a big check needs, fping where raw sockets cannot be
used, and expectations with their report."""
