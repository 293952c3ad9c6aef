"""Test suite; a package so that test folders named like the components (webhook, policy_engine) never shadow them."""
