"""Where cost data comes from: FOCUS files a user hands over, FOCUS exports pulled from S3, and
AWS Cost Explorer (see ``valdrix.costs``)."""
