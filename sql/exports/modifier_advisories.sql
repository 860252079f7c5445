-- purpose: encounters whose modifiers a payer may question
-- grain: encounter
-- upstream: fct_modifier_advisories
select encounter_id, patient_id, payer_id, encounter_date, cpt_code, modifier, advice
from fct_modifier_advisories order by encounter_date, encounter_id, modifier
