"""The program's layers, built in this order: network, data, edge, compute, observability."""
