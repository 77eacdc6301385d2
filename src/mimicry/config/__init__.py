"""The configuration and the sample sheet: the config validated against its schema with
defaults filled in (`validation`), the sample sheet read and checked
(`sample_sheet`), each participant's raw file found and checked against the settings
(`raw_files`), the study section as the steps read it (`study_section`), config files
read as data (`files`), the schema as data (`schema`, `schemas/`) and the generated
reference (`reference`).
"""
