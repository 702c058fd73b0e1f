"""What a graph costs where it runs: profiles, memory (liveness, training), devices, roofline, measurement."""
