"""Singer tap for the WiseRock Supabase API."""
