"""Pure domain: metric maths, tiers, time parsing, errors. Standard library only."""
