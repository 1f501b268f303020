"""What things cost: device profiles (devices.toml), the roofline cost model, and the deployment a
plan is optimized for."""
