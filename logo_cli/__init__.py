"""logo: personalized answers from a local LLM, from each user's own history (local memory) and what the
whole population shares (global memory). Implements LoGo (arXiv 2509.23767)."""

__version__ = "0.1.0"
