"""What other systems read: FHIR R4B bundles, diagrams (mermaid, DOT, SVG) and the JSON
Schemas of iptflow's files and events."""
