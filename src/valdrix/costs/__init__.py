"""Cost data: FOCUS files and AWS Cost Explorer, stored at daily grain with every reading kept."""
