"""Fleet exposure: which installations the imported advisories affect, per scan."""
