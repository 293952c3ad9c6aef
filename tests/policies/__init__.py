"""Tests of the Rego policies (through the Rego test runner) and of the runner itself."""
